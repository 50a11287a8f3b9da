"""The built-in secret families: find them in a text and replace each with `MASK` (pure, no I/O).

`mask_text(text)` replaces only the secret part of each finding with `MASK` ("***") so the
context stays readable. The families (`FAMILIES` names them; README "Security" lists them):

- **PEM private keys**: the body of `-----BEGIN ... PRIVATE KEY----- ... -----END ...-----`
  (RSA, EC, OPENSSH, ENCRYPTED, PGP ... BLOCK; real newlines or `\\n` escapes) becomes
  `-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----`. A header with no END
  masks everything that looks like key material after it (a truncated key still hides); the
  `|` margin traceback draws around an exception group's members does not end the body. A key
  printed over several log lines is masked by `lines.KeyBlocks`, line after line.
- **Passwords in URLs**: `scheme://user:SECRET@host` -> `scheme://user:***@host`, any scheme;
  the last `@` of the authority ends the password, which may hold an unencoded `/`
  (`user:ab/cd==@host`); a port and a path holding an `@` (`host:8080/users/@me`) are then
  over-masked (`host:***@me`), as a leak would be worse.
- **Service tokens**, recognisable without a key name (rules read from gitleaks' rule set and
  reimplemented here). The well-known, non-secret type prefix is kept: AWS access key ids
  (`AKIA`, `ASIA`, `ABIA`, `ACCA`, `A3T?` + 16) -> `AKIA***`, and a bare 40-character secret
  access key on the same line (within 256 characters) is masked with it; GCP API keys ->
  `AIza***`; Google OAuth client secrets `GOCSPX-`; GitHub `ghp_` `gho_` `ghs_` `ghu_` `ghr_`
  `github_pat_`; GitLab `glpat-` and its siblings (`gldt-` `glrt-` `glptt-` `glcbt-` `glft-`
  `glimt-` `glagent-` `gloas-` `glsoat-` `glffct-`); Slack `xox[abposre]-` and `xapp-`, and
  webhook URLs `hooks.slack.com/services/***`; Stripe `sk_`/`rk_` + `live`/`test`/`prod`;
  OpenAI `sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-`; Anthropic `sk-ant-api03-` (any
  `sk-ant-<kind>NN-`); SendGrid `SG.`; Twilio `SK`/`AC` + 32 hex; npm `npm_`; PyPI
  `pypi-Ag...`; Databricks `dapi` + 32 hex; Hugging Face `hf_`, `api_org_`; Mailgun `key-`
  + 32 hex; HashiCorp Vault `hvs.` `hvb.` `hvr.`; Groq `gsk_`; Shopify `shpat_` `shpss_`
  `shpca_` `shppa_`; Postman `PMAK-`; New Relic `NRAK-`; Grafana `glc_` `glsa_`; Linear
  `lin_api_`; Doppler `dp.pt.` (`st`, `ct`, `sa`); DigitalOcean `dop_v1_`; dbt Cloud `dbtc_`;
  age `AGE-SECRET-KEY-1`. JWTs (`eyJ<header>.<payload>[.sig]`) are replaced whole, anywhere.
- **Authorization schemes**: `Bearer <token>` anywhere (unless the next word is plain prose
  such as "token" or "required"); `Basic <base64>` when it decodes to `user:password`.
- **Cookies**: `Cookie:` and `Set-Cookie:` headers (and any key containing `cookie`): each
  `name=value` keeps its name and loses its value (`Path`, `Expires`, ... attributes stay); a
  value with no `=` is masked whole.
- **Secret-named keys**: `key=value`, `key: value`, `key => value`, `"key": "value"`,
  `'key': b'value'`, `key="quoted value"`, `{\\"key\\": \\"value\\"}` (JSON escaped any number
  of times, as in a repr of a JSON string inside a JSON string), `--key value`,
  `--key=value` and `['--key', 'value']` argv lists, where the key CONTAINS
  (case-insensitively) one of: password, passwd, pwd, passphrase, secret, token,
  credential, signature, api key, access key, private key, session key, account key
  (Azure `AccountKey=`, `SharedAccessKey=`), connection string (`conn_str`,
  `connectionString`, ...), cookie or auth (see below); `_`/`-`/nothing may separate the
  words. A bare value ends at whitespace, `,`, `;`, `&`, `)`, `]`, `}` (closing brackets,
  so `{"pin": 1234}` keeps its brace) or a quote; a quoted value at its closing quote.
  `Authorization: Bearer xyz` keeps the scheme word: `Bearer ***`. A flat list or tuple
  value (`auth=('user', 'pw')`) has each element masked; a dict value is left to its keys.

Decisions (the line between "secret" and "context"):

- `auth` counts as a keyword unless followed by `or` or `ent` (`author`, `authority`,
  `authorize`, `authenticated` are not secret names), but `authorization` is. A key found
  only through `auth`/`authorization` whose name ends with a descriptor (`url`, `uri`,
  `endpoint`, `host`, `type`, `method`, `mode`, `scheme`, `provider`, `backend`, `plugin`,
  `enabled`, `required`, `version`, `user`, `username`, `name`, `id`, ...) is left alone:
  `oauth_url=https://...` and `auth_type=basic` stay readable, `auth_token=...` is masked.
- `sig` counts only as the whole key (`&sig=...` in Azure SAS URLs), not in `signal`.
- Values that are not secrets are kept: empty values, values already made only of `*`,
  bare `None`/`null`/`True`/`False`/`nil`/`undefined`, bare structure openers (`{`, `[`),
  default object reprs (`<Foo object at 0x7f...>`), paths under a key that is exactly
  `PWD`/`OLDPWD` (environment dumps) and digit-only values after `tokens`
  (`max_tokens=256`, `tokens_used: 12`).
- `word value` with a space counts only for a `--flag` (start of text, whitespace, a quote,
  `[`, `(` or `,` before the dashes): "Invalid password for user etl" stays readable.
- `pass` alone and `key` alone are not keywords (too common). Over-masking is preferred
  to leaking: a source line `password = get_password()` shows `password = ***)`, and a
  `conn_str`/`connection_string` value is masked whole even when it is a URL.
- A token family needs its prefix at a word start (`task-...` is not OpenAI's `sk-`) and a
  body of the family's length (20+ characters for most): short ids stay readable.
- No value runs through `-----`, so PEM armour lines are never cut by another finding.

`mask_text` is idempotent (`mask_text(mask_text(x)) == mask_text(x)`): lines that just got a
MASK are re-scanned until nothing more is found, because a MASK can complete another pattern
(in `://password://]@` the masked value `//` turns `***]` into a URL password). Text without
a finding is returned unchanged (the same object). It raises only on a bug here; `Masker`
turns that into a withheld text (never the raw one).

Speed: every scan is linear and starts with a literal, so CPython's regex engine skips
ahead in C. The text is lower-cased once, then one scan per anchor letter finds every
keyword and token prefix containing it (`w`: password/passwd/pwd; `k`: token, ...key, PEM,
cookie, Stripe, `sk-`; `h`: auth, passphrase, GitHub, `hf_`, Vault, Slack webhooks; `g`:
signature, SendGrid, GitLab; `c`: secret, credential, conn_str; `p`: npm, PyPI, Databricks;
`b`: bearer, basic; `x`: Slack), each skipped when its letter is absent (a memchr).
Case-sensitive families scan the original text, gated the same way. Only real hits reach
Python. `mask_many` scans all texts joined by a separator no finding can cross, with the
same result as one `mask_text` per text. (`benchmarks/masking.py` measures it.)
"""

from __future__ import annotations

import base64
import binascii
import re
from bisect import bisect_right
from itertools import accumulate

MASK = "***"

#: the built-in families, as README "Security" lists them (tests plant at least one shape of each)
FAMILIES = (
    "PEM private key",
    "password in a URL",
    "AWS access key id",
    "AWS secret access key (next to its id)",
    "GCP API key",
    "Google OAuth client secret",
    "GitHub token",
    "GitLab token",
    "Slack token",
    "Slack webhook URL",
    "Stripe key",
    "OpenAI key",
    "Anthropic key",
    "SendGrid key",
    "Twilio key",
    "npm token",
    "PyPI token",
    "Databricks token",
    "Hugging Face token",
    "Mailgun key",
    "HashiCorp Vault token",
    "Groq key",
    "Shopify token",
    "Postman key",
    "New Relic key",
    "Grafana token",
    "Linear key",
    "Doppler token",
    "DigitalOcean token",
    "dbt Cloud token",
    "age secret key",
    "JWT",
    "Bearer token",
    "Basic credentials",
    "cookie",
    "secret-named key",
)

# --- anchored keyword scanners (run on the lower-cased text) -------------------------------
# Each regex starts with one literal letter, so the engine scans in C for that letter only;
# the rest of a keyword is checked by a fixed-width look-behind. A match ends at the end of
# the keyword (or token prefix). `lastgroup` names the kind; None means a plain secret-named key.

# A secret-named key must be followed (after the rest of its name) by a separator; checking
# that inside the scan keeps keyword mentions such as "tokenize" or "KeyError" out of Python.
_SEP_AHEAD = r"(?=[a-z0-9_.-]{0,64}+(?:\\*+[\"'])?\]?(?:[ \t]*+(?:=>|=(?!=)|:(?![:=]))|[ \t,]))"
_W_SCAN = re.compile(r"w(?:ord(?<=password)|d(?<=passwd)|d(?<=pwd))" + _SEP_AHEAD)
_K_SCAN = re.compile(
    r"k(?:(?:ey(?:(?<=apikey)|(?<=api_key)|(?<=api-key)|(?<=accesskey)|(?<=access_key)"
    r"|(?<=access-key)|(?<=privatekey)|(?<=private_key)|(?<=private-key)|(?<=sessionkey)"
    rf"|(?<=session_key)|(?<=session-key)|(?<=accountkey))|en(?<=token)){_SEP_AHEAD}"
    rf"|ie(?<=cookie)(?P<cookie>){_SEP_AHEAD}"
    r"|ey(?<=private key)(?: block)?-----(?P<pem>)"
    r"|_(?:live|test|prod)_(?<=[sr]k_live_|[sr]k_test_|[sr]k_prod_)(?P<stripe>)"
    r"|_(?<=gsk_)(?P<groq>)"
    r"|-(?:(?<=sk-)(?P<openai>)|(?<=pmak-)(?P<postman>)|(?<=nrak-)(?P<newrelic>))"
    r"|ey-1(?<=age-secret-key-1)(?P<age>)"
    r"|ey-(?P<mailgun>)"
    r"|(?<=sk)(?=[0-9a-f]{32}(?![0-9a-z]))(?P<twilio>))"
)
_H_SCAN = re.compile(
    r"h(?:(?:orization(?<=authorization)(?P<authz>)|(?<=auth)(?!or|ent)(?P<auth>)"
    rf"|rase(?<=passphrase)){_SEP_AHEAD}"
    r"|[pousr]_(?<=gh[pousr]_)(?P<gh>)"
    r"|ub_pat_(?<=github_pat_)(?P<ghpat>)"
    r"|f_(?P<hf>)"
    r"|v[sbr]\.(?P<vault>)"
    r"|p(?:at|ss|ca|pa)_(?<=sh[p](?:at|ss|ca|pa)_)(?P<shopify>)"
    r"|ooks\.slack\.com/(?P<slackhook>))"
)
_G_SCAN = re.compile(
    rf"g(?:(?:nature(?<=signature)|(?<=sig)(?P<sig>)){_SEP_AHEAD}"
    r"|\.(?<=sg\.)(?P<sendgrid>)"
    r"|l(?:pat|dt|rt|ptt|cbt|ft|imt|agent|oas|soat|ffct)-(?P<gitlab>)"
    r"|l(?:c|sa)_(?P<grafana>)"
    r"|_(?<=api_org_)(?P<hforg>))"
)
_C_SCAN = re.compile(
    rf"c(?:(?:re(?:t(?<=secret)|dential)|onn(?:ection)?[_-]?str){_SEP_AHEAD}"
    r"|_(?<=dbtc_)(?P<dbt>)"
    r"|(?<=ac)(?=[0-9a-f]{32}(?![0-9a-z]))(?P<twilio_ac>))"
)
_P_SCAN = re.compile(
    r"p(?:m_(?<=npm_)(?P<npm>)"
    r"|ypi-(?=ag)(?P<pypi>)"
    r"|i(?<=dapi)(?=[0-9a-f]{32})(?P<databricks>)"
    r"|i_(?<=lin_api_)(?P<linear>)"
    r"|\.(?:pt|st|ct|sa)\.(?<=dp\.(?:pt|st|ct|sa)\.)(?P<doppler>)"
    r"|_v1_(?<=dop_v1_)(?P<digitalocean>))"
)
_B_SCAN = re.compile(r"b(?:earer(?P<bearer>)|asic(?P<basic>))")
_X_SCAN = re.compile(r"x(?:ox[abposre]-(?P<slack>)|app-(?P<slackapp>)|-(?<=gocspx-)(?P<gocspx>))")

_LOW_SCANNERS = (
    ("w", _W_SCAN),
    ("k", _K_SCAN),
    ("h", _H_SCAN),
    ("g", _G_SCAN),
    ("c", _C_SCAN),
    ("p", _P_SCAN),
    ("b", _B_SCAN),
    ("x", _X_SCAN),
)

# --- scanners on the original text (case matters) ------------------------------------------

_JWT = re.compile(
    r"J(?<=eyJ)(?<![A-Za-z0-9_-]eyJ)(?:[A-Za-z0-9_]|-(?!----)){4,}+"
    r"(?:\.(?:[A-Za-z0-9_]|-(?!----))++){1,4}+"
)
_CLOUD = re.compile(
    r"A(?<![A-Za-z0-9_-]A)(?:"
    r"(?:KIA|SIA|BIA|CCA|3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"|Iza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-]))"
)
# a bare AWS secret access key: 40 base64 characters, searched for on the line of an access key id
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_NEAR = 256
# the password ends at the authority's last "@"; one holding an unencoded "/" (base64 secrets do) is
# tried second: a port followed by a path with an "@" (`host:8080/users/@me`) is then over-masked
_URL_PASSWORD = re.compile(
    r"://[^\s/?#@:\"'<>\\]*+:(?:(?P<pw>[^\s/?#\"'<>\\]*)@"
    r"|(?P<slashed>[^\s?#\"'<>\\]*)@)"
)
_PEM = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    # no "*": masked material ends it; "|": the margin of an exception group's members in a traceback
    r"(?P<body>(?:[A-Za-z0-9+/=\s:,.\\|]|-(?!----))*+)"
    r"(?:-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----)?"
)

# --- pieces of a key=value finding --------------------------------------------------------
# No value runs through "-----": PEM armour lines stay whole, which keeps masking idempotent.

_KEYCHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_FLAG_BEFORE = frozenset(" \t\r\n\f\v'\"[(,")
_KEY_TAIL = re.compile(  # after the keyword: rest of the key, closing quote, separator
    r"([a-z0-9_.-]{0,64}+)(\\*+[\"'])?\]?(?:(?P<assign>[ \t]*+(?:=>|=(?!=)|:(?![:=]))[ \t]*+)"
    r"|(?P<space>[ \t]++)|(?P<comma>,[ \t]*+))"
)
_QUOTED = r"""[bBrRuUfF]{0,2}(?:"(?P<dq>(?:[^"\\\n]|\\.)*+)"|'(?P<sq>(?:[^'\\\n]|\\.)*+)')"""
_VALUE = re.compile(
    r"(?P<obj><[A-Za-z_][\w. ]{0,200}? at 0x[0-9a-fA-F]+>)"
    r"|(?:(?i:bearer|basic|token|digest)[ \t]++(?=\S))?(?:"
    + _QUOTED
    + r"""|\\++"(?P<edq>(?:[^"\\\n]|\\++[^"\\\n])*+)\\++"|\\++'(?P<esq>(?:[^'\\\n]|\\++[^'\\\n])*+)\\++'"""
    + r"""|(?P<list>[\[(])|\\*+["']?(?P<bare>(?:[^\s,;&)\]}'"\\-]|-(?!----)|\\(?!\\*+["']))++))"""
)
_BARE = re.compile(r"""(?:[^\s,;&)\]}'"-]|-(?!----))++""")
_ATOM = r"""(?:[^\s,;&()\[\]{}'"-]|-(?!----))++"""
_ANY_ITEM = "(?:" + re.sub(r"\?P<\w+>", "", _QUOTED) + "|" + _ATOM + ")"
_LIST = re.compile(r"[\[(][ \t]*+(?:" + _ANY_ITEM + r"[ \t]*+,[ \t]*+)*+(?:" + _ANY_ITEM + r"[ \t]*+)?[\])]")
_LIST_ITEM = re.compile(_QUOTED + "|(?P<bare>" + _ATOM + ")")
_MAX_LIST = 2048
_SCHEME = re.compile(r"(?i:bearer|basic|token|digest)[ \t]++(?=\S)")
_AUTH_TOKEN = re.compile(r"[ \t]++(?P<tok>(?:[A-Za-z0-9._~+/]|-(?!----))++=*+)")
_COOKIE_PAIR = re.compile(r"(?P<name>[^=;,\s]++)[ \t]*+=[ \t]*+(?P<value>(?:[^;\n-]|-(?!----))*+)")
_COOKIE_ATTRIBUTES = frozenset(
    "path domain expires max-age samesite secure httponly priority partitioned version comment".split()
)

_NOT_SECRET = frozenset({"None", "null", "NULL", "nil", "True", "False", "true", "false", "undefined"})
_AUTH_DESCRIPTORS = tuple(
    "url uri endpoint host domain server type method mode scheme provider backend plugin enabled "
    "required version user username name id realm region timeout path class source".split()
)
_PROSE_AFTER_BEARER = frozenset(
    "token tokens auth authentication authorization header headers scheme credential "
    "credentials is was are the a an and or for of in on to not required missing invalid "
    "expired format type string value none null must should with from using prefix".split()
)
_JOIN_SEP = "\n\x00\n"
_SETTLE_ROUNDS = 4


def _lower(text: str) -> str:
    """Lower-case without changing the length (only U+0130 grows under str.lower)."""
    low = text.lower()
    if len(low) != len(text):
        low = text.replace("\u0130", "i").lower()
    return low


def _is_masked(segment: str) -> bool:
    """Empty, blank or only `*`: nothing (left) to mask."""
    return not segment.strip(" \t\r\n*")


_Spans = list[tuple[int, int]]


def _add(spans: _Spans, text: str, start: int, end: int) -> None:
    if end > start and not _is_masked(text[start:end]):
        spans.append((start, end))


def _boundary_before(s: str, i: int) -> bool:
    return i <= 0 or not (s[i - 1].isalnum() or s[i - 1] == "_")


# --- handlers: each gets the anchor match, records spans, returns where to resume ---------


def _key_value(text: str, low: str, m: re.Match[str], kind: str | None, spans: _Spans) -> int:
    end = m.end()
    tail = _KEY_TAIL.match(low, end)
    if tail is None:
        return end
    sep = tail.lastgroup
    rest_end = tail.end(1)
    if kind in ("auth", "authz") and low[end:rest_end].rstrip("s").endswith(_AUTH_DESCRIPTORS):
        return tail.end()
    key = ""
    if sep != "assign" or kind == "sig" or low[end - 3 : end] == "pwd":
        start = m.start()
        floor = max(0, start - 64)
        while start > floor and low[start - 1] in _KEYCHARS:
            start -= 1
        key = low[start:rest_end]
        if sep != "assign":  # `word value` is a key only for a --flag; `'--f', 'v'` needs quotes
            flag = key[:1] == "-" and (start == 0 or low[start - 1] in _FLAG_BEFORE)
            if not flag or (sep == "comma" and tail.start(2) == -1):
                return rest_end
        if kind == "sig" and key != "sig":
            return end
    if kind == "cookie":
        return _cookie(text, tail.end(), sep, spans)
    # These rules read only the keyword and what follows, or a key that stands alone, so
    # masking something next to the key cannot change the decision on the next pass.
    counts = low.startswith("tokens", end - 5)  # max_tokens=256, tokens_used=12
    return _value(text, tail.end(), sep, counts, key in ("pwd", "oldpwd"), spans)


def _value(text: str, pos: int, sep: str | None, counts: bool, path_key: bool, spans: _Spans) -> int:
    v = _VALUE.match(text, pos)
    if v is None:
        return pos
    kind = v.lastgroup or ""  # (one named group always matches)
    s, e = v.span(kind)
    if kind in ("bare", "dq", "sq", "edq", "esq"):
        found = text[s:e]
        if (counts and found.isdigit()) or (path_key and found[:1] in ("/", "~")):
            return v.end()
    if kind == "bare":
        if found in _NOT_SECRET or not found.strip("{}[]()<>"):
            return e
        if sep == "comma" or (sep == "space" and found[:1] == "-"):
            return s  # not this key's value (argv items are quoted; `--flag --next`): rescan it
    elif kind == "list":
        lm = _LIST.match(text, s, s + _MAX_LIST)
        if lm is not None:
            for item in _LIST_ITEM.finditer(text, s + 1, lm.end() - 1):
                _item(text, item, spans)
            return lm.end()
        b = _BARE.match(text, s)  # not a flat list: a nested structure or a plain value
        if b is None or not b.group().strip("{}[]()<>"):
            return e
        e = b.end()
    elif kind == "obj":
        return e
    else:
        inner = _SCHEME.match(text, s, e)  # 'Bearer abc' keeps its scheme word
        if inner is not None:
            s = inner.end()
    _add(spans, text, s, e)
    return v.end() if v.end() > e else e


def _cookie(text: str, pos: int, sep: str | None, spans: _Spans) -> int:
    """A cookie header's value: each `name=value` loses its value (attributes such as `Path`
    stay); a value with no `=` is masked whole. Unquoted, the value runs to the end of the line."""
    v = _VALUE.match(text, pos)
    if v is None or v.lastgroup == "obj":
        return pos if v is None else v.end()
    kind = v.lastgroup or ""  # (one named group always matches)
    if kind in ("dq", "sq", "edq", "esq"):
        s, e = v.span(kind)
    elif sep != "assign":  # `--cookie value`: an unquoted flag value is an ordinary value
        return _value(text, pos, sep, False, False, spans)
    else:
        s = v.start(kind)
        e = text.find("\n", s)
        e = len(text) if e == -1 else e
        armour = text.find("-----", s, e)
        e = (e if armour == -1 else armour) - (len(text[s:e]) - len(text[s:e].rstrip()))
    found = False
    for pair in _COOKIE_PAIR.finditer(text, s, e):
        found = True
        if pair.group("name").lower() not in _COOKIE_ATTRIBUTES:
            vs, ve = pair.span("value")
            _add(spans, text, vs, vs + len(pair.group("value").rstrip()))
    if not found:
        _add(spans, text, s, e)
    # quoted: resume after the quote; a header runs to the end of the line: resume where its
    # value starts, so the keys that follow on the line are still found
    return v.end() if kind in ("dq", "sq", "edq", "esq") else s


def _item(text: str, m: re.Match[str], spans: _Spans) -> None:
    for group in ("dq", "sq", "bare"):
        s = m.start(group)
        if s != -1:
            e = m.end(group)
            if group != "bare" or text[s:e] not in _NOT_SECRET:
                _add(spans, text, s, e)
            return


def _pem(text: str, low: str, m: re.Match[str], spans: _Spans) -> int:
    header = low.rfind("-----begin ", max(0, m.start() - 48), m.start())
    if header == -1:
        return m.end()
    pm = _PEM.match(text, header)
    if pm is None:
        return m.end()
    s, e = pm.span("body")
    if e == pm.end():  # no END line: keep the whitespace that follows the key material
        e = s + len(text[s:e].rstrip())
    if text[s:e].replace("\\n", "").strip():  # blank or only escaped newlines: nothing to hide
        _add(spans, text, s, e)
    return max(pm.end(), m.end())


def _auth_scheme(text: str, low: str, m: re.Match[str], kind: str, spans: _Spans) -> int:
    if not _boundary_before(low, m.start()):
        return m.end()
    t = _AUTH_TOKEN.match(text, m.end())
    if t is None:
        return m.end()
    s, e = t.span("tok")
    token = text[s:e]
    if kind == "bearer":
        if token.lower() in _PROSE_AFTER_BEARER:
            return m.end()
    else:
        try:
            decoded = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return m.end()
        if b":" not in decoded:
            return m.end()
    _add(spans, text, s, e)
    return e


# A token's body: what follows its prefix. Group `tok` (else the whole match) is masked; what
# comes before it (a sub-prefix such as `proj-` after `sk-`) stays readable.
_TOKEN20 = r"(?:[A-Za-z0-9_]|-(?!----)){20,}+"
_ALNUM20 = r"[A-Za-z0-9]{20,}+"
_HEX32 = r"[0-9a-fA-F]{32}(?![A-Za-z0-9])"
_c = re.compile
_PREFIXED: dict[str, tuple[int | None, str, re.Pattern[str]]] = {
    # kind -> (prefix characters before the anchor match, or None: no word-start check;
    #          the prefix as written in the original text ("" = any case); body regex)
    "gh": (1, "", _c(r"[A-Za-z0-9_]{20,}+")),
    "ghpat": (3, "", _c(r"[A-Za-z0-9_]{20,}+")),
    "slack": (0, "", _c(r"(?:[A-Za-z0-9]|-(?!----)){8,}+")),
    "slackapp": (0, "", _c(r"(?:[A-Za-z0-9]|-(?!----)){8,}+")),
    "slackhook": (None, "", _c(r"(?:services|workflows|triggers)/(?P<tok>[A-Za-z0-9+/_-]{20,}+)")),
    "stripe": (1, "", _c(r"[A-Za-z0-9]{10,}+")),
    "openai": (1, "sk-", _c(r"(?:(?:proj|svcacct|admin)-|ant-[a-z]{2,8}\d\d-)?(?P<tok>" + _TOKEN20 + ")")),
    "sendgrid": (1, "SG.", _c(r"[A-Za-z0-9_-]{16,}+\.[A-Za-z0-9_-]{16,}+")),
    "twilio": (1, "SK", _c(_HEX32)),
    "twilio_ac": (1, "AC", _c(_HEX32)),
    "npm": (1, "", _c(r"[A-Za-z0-9]{30,}+")),
    "pypi": (0, "", _c(r"Ag[A-Za-z0-9_-]{50,}+")),
    "databricks": (2, "", _c(r"[0-9a-f]{32}(?:-\d)?(?![A-Za-z0-9])")),
    "hf": (0, "", _c(_ALNUM20)),
    "hforg": (6, "", _c(_ALNUM20)),
    "gitlab": (0, "", _c(r"(?:[A-Za-z0-9_.]|-(?!----)){20,}+")),
    "grafana": (0, "", _c(r"[A-Za-z0-9+/=_]{20,}+")),
    "mailgun": (None, "", _c(r"[0-9a-f]{32}(?![A-Za-z0-9])")),
    "vault": (0, "", _c(_TOKEN20)),
    "groq": (2, "", _c(_ALNUM20)),
    "shopify": (1, "", _c(_ALNUM20)),
    "postman": (3, "", _c(r"[A-Za-z0-9]{20,}+(?:-[A-Za-z0-9]{20,}+)?")),
    "newrelic": (3, "", _c(_ALNUM20)),
    "linear": (5, "", _c(_ALNUM20)),
    "doppler": (1, "", _c(_ALNUM20)),
    "digitalocean": (2, "", _c(_ALNUM20)),
    "dbt": (3, "", _c(r"[A-Za-z0-9_]{20,}+")),
    "gocspx": (5, "", _c(_TOKEN20)),
    "age": (None, "", _c(r"[0-9A-Z]{50,}+")),
}
del _c


def _prefixed_token(text: str, m: re.Match[str], kind: str, spans: _Spans) -> int:
    back, written, body = _PREFIXED[kind]
    if back is not None:
        start = m.start() - back
        if not _boundary_before(text, start) or (written and not text.startswith(written, start)):
            return m.end()
    b = body.match(text, m.end())
    if b is None:
        return m.end()
    s = b.start("tok") if "tok" in body.groupindex else b.start()
    _add(spans, text, s, b.end())
    return b.end()


def _aws_secret_near(text: str, start: int, end: int, spans: _Spans) -> None:
    """A bare secret access key on the line of an access key id (a tuple, a CSV row, argv)."""
    lo = max(text.rfind("\n", 0, start) + 1, start - _AWS_NEAR)
    hi = text.find("\n", end)
    hi = min(len(text) if hi == -1 else hi, end + _AWS_NEAR)
    for c in _AWS_SECRET.finditer(text, lo, hi):
        cand = c.group()
        if (
            any(ch.isupper() for ch in cand)
            and any(ch.islower() for ch in cand)
            and any(ch.isdigit() or ch in "/+" for ch in cand)
        ):
            _add(spans, text, c.start(), c.end())


def _scan_low(text: str, low: str, rx: re.Pattern[str], spans: _Spans) -> None:
    pos = 0
    search = rx.search
    while (m := search(low, pos)) is not None:
        kind = m.lastgroup
        if kind is None or kind in ("auth", "authz", "sig", "cookie"):
            pos = _key_value(text, low, m, kind, spans)
        elif kind == "pem":
            pos = _pem(text, low, m, spans)
        elif kind in ("bearer", "basic"):
            pos = _auth_scheme(text, low, m, kind, spans)
        else:
            pos = _prefixed_token(text, m, kind, spans)
        pos = max(pos, m.end())


def _find_spans(text: str) -> _Spans:
    spans: _Spans = []
    low = _lower(text)
    for letter, rx in _LOW_SCANNERS:
        if letter in low:
            _scan_low(text, low, rx, spans)
    if "J" in text:
        for m in _JWT.finditer(text):
            _add(spans, text, m.start() - 2, m.end())
    if "A" in text:
        for m in _CLOUD.finditer(text):
            _add(spans, text, m.start() + 4, m.end())
            if text[m.start() + 1] != "I":  # an AWS access key id, not a GCP key (AIza)
                _aws_secret_near(text, m.start(), m.end(), spans)
    if "@" in text:
        for m in _URL_PASSWORD.finditer(text):
            group = "pw" if m.group("pw") is not None else "slashed"
            _add(spans, text, m.start(group), m.end(group))
    return spans


def _apply(text: str, spans: _Spans) -> tuple[str, list[int]]:
    """`text` with each run of overlapping or touching spans replaced by one MASK, and the
    offsets of those MASKs in the result."""
    spans.sort()
    out: list[str] = []
    marks: list[int] = []
    done = size = 0
    cur_s, cur_e = spans[0]
    for s, e in spans:
        if s <= cur_e:
            if e > cur_e:
                cur_e = e
            continue
        out += (text[done:cur_s], MASK)
        size += cur_s - done
        marks.append(size)
        size += len(MASK)
        done = cur_e
        cur_s, cur_e = s, e
    out += (text[done:cur_s], MASK, text[cur_e:])
    marks.append(size + cur_s - done)
    return "".join(out), marks


def _apply_many(items: list[str], spans: _Spans) -> tuple[list[str], dict[int, list[int]]]:
    """Apply spans found in `_JOIN_SEP.join(items)` to the items they fall in."""
    step = len(_JOIN_SEP)
    ends = list(accumulate(map(len, items)))

    def start_of(i: int) -> int:
        return ends[i] - len(items[i]) + i * step

    by_item: dict[int, _Spans] = {}
    indices = range(len(items))
    for s, e in spans:
        i = bisect_right(indices, s, key=start_of) - 1
        base = start_of(i)
        by_item.setdefault(i, []).append((s - base, e - base))
    out = list(items)
    marks: dict[int, list[int]] = {}
    for i, item_spans in by_item.items():
        out[i], marks[i] = _apply(items[i], item_spans)
    return out, marks


def _settle(texts: list[str], marks: dict[int, list[int]]) -> None:
    """Re-scan, in place, the lines that just got a MASK until nothing more is found.

    Masking can hand another family new context (`//` became `***`, which a URL password
    may contain). Every finding but a PEM body lies within one line, and a PEM body cannot
    run into a MASK, so re-scanning those lines (joined, in one pass) is as good as
    re-scanning everything; this is what makes `mask` idempotent. A MASK that is a whole
    quoted string (`'***'`) is skipped: quotes stop every pattern that accepts `*`.
    """
    where: list[tuple[int, int, int]] = []  # (text index, line start, line end)
    for t, offsets in marks.items():
        text = texts[t]
        line_end = -1
        for p in offsets:
            quote = text[p - 1 : p]
            if p < line_end or (quote in ("'", '"') and text[p + 3 : p + 4] == quote):
                continue
            line_end = text.find("\n", p)
            line_end = len(text) if line_end == -1 else line_end
            where.append((t, text.rfind("\n", 0, p) + 1, line_end))
    for _ in range(_SETTLE_ROUNDS):
        if not where:
            return
        lines = [texts[t][s:e] for t, s, e in where]
        spans = _find_spans(_JOIN_SEP.join(lines))
        if not spans:
            return
        fixed, _ = _apply_many(lines, spans)
        edits: dict[int, list[tuple[int, int, str]]] = {}
        for (t, s, e), old, new in zip(where, lines, fixed, strict=True):
            if new is not old:
                edits.setdefault(t, []).append((s, e, new))
        where = []
        for t, text_edits in edits.items():
            text = texts[t]
            pieces: list[str] = []
            done = shift = 0
            for s, e, new in text_edits:
                pieces += (text[done:s], new)
                where.append((t, s + shift, s + shift + len(new)))
                shift += len(new) - (e - s)
                done = e
            pieces.append(text[done:])
            texts[t] = "".join(pieces)


def mask_text(text: str) -> str:
    """`text` with every built-in finding replaced by MASK; the same object when none is found.

    Raises only on a bug here (the caller withholds the text then)."""
    spans = _find_spans(text)
    if not spans:
        return text
    out, marks = _apply(text, spans)
    texts = [out]
    _settle(texts, {0: marks})
    return texts[0]


def mask_texts(items: list[str]) -> list[str]:
    """Same as `[mask_text(t) for t in items]`, with one scan over all the texts.

    No finding can cross the separator ("\\n\\x00\\n"): every pattern stops at "\\n" except
    PEM key material, which stops at "\\x00" and never ends in whitespace."""
    if len(items) < 2:
        return [mask_text(t) for t in items]
    spans = _find_spans(_JOIN_SEP.join(items))
    if not spans:
        return list(items)
    out, marks = _apply_many(items, spans)
    _settle(out, marks)
    return out


def is_masked(segment: str) -> bool:
    """Empty, blank or only `*`: nothing (left) to mask."""
    return _is_masked(segment)


def secret_value(key: str, value: str) -> bool:
    """True when `key=value` reads as a secret-named key with a value worth hiding, by the rules
    that apply in text (`password` yes, `max_tokens` with a count no, `author` no). `value` is
    written as in JSON (a str quoted). A finding inside the value (a token) does not count."""
    start = len(key) + 1
    return any(s in (start, start + 1) for s, _ in _find_spans(f"{key}={value}"))


__all__ = ["MASK", "FAMILIES", "mask_text", "mask_texts", "is_masked", "secret_value"]
