"""Text patterns of bounce reasons (after Sisimai's reason classes), most specific first.

Each entry is (reason, regular expressions); a diagnostic text that matches one of them
gets that reason. Order matters: a text that says "mailbox full" also says "mailbox", so
the full-mailbox patterns come before the unknown-user ones.
"""

from __future__ import annotations

import re

_TABLE: list[tuple[str, list[str]]] = [
    (
        "authfailure",
        [
            r"\bdmarc (?:policy|validation|check)",
            r"unauthenticated (?:e-?mail|mail|sender)",
            r"\bspf (?:check|validation|fail|hardfail|softfail)",
            r"\bspf[ -]?(?:record|permerror|failure)",
            r"sender policy framework",
            r"dkim (?:signature|validation|check|fail)",
            r"(?:authentication|auth) (?:check|checks) failed",
            r"is not authorized to send (?:on behalf|mail)",
            r"does not pass (?:spf|dmarc|dkim)",
            r"not (?:designated|permitted) (?:by|to send)",
            r"\bsender (?:is )?not authenticated",
            r"5\.7\.2[3-6]\b",
        ],
    ),
    (
        "requireptr",
        [
            r"no (?:ptr|reverse[ -]dns|rdns)",
            r"reverse (?:dns|lookup) (?:fail|error|is required|required)",
            r"(?:cannot|can ?not|could not|couldn't|unable to) (?:find|resolve) (?:your|the) "
            r"(?:reverse|host ?name)",
            r"(?:ptr|rdns|reverse dns) (?:record|records)?"
            r" ?(?:is |are )?(?:missing|not found|required)",
            r"cannot find your hostname",
            r"client host rejected: cannot find your (?:reverse )?hostname",
            r"ip address .{0,40}has no ptr",
            r"does not have (?:a )?(?:ptr|reverse)",
            r"5\.7\.25\b",
        ],
    ),
    (
        "mesgtoobig",
        [
            r"message (?:is )?too (?:big|large|long)",
            r"message (?:size )?exceeds? (?:the )?(?:fixed"
            r" |maximum |size )?(?:message )?(?:size|limit)",
            r"size limit exceeded",
            r"message length exceeds",
            r"mail (?:is )?too large",
            r"exceeds (?:the )?maximum (?:allowed )?(?:message )?size",
            r"message file too big",
            r"size exceeds",
        ],
    ),
    (
        "mailboxfull",
        [
            r"mail ?box (?:is |was )?(?:full|over ?quota|exceeded|out of storage)",
            r"mail ?box (?:size )?(?:limit )?exceeded",
            r"over ?quota|quota (?:exceeded|exceed|full|violation)|exceeded (?:storage|quota)",
            r"(?:user|recipient)(?:'s)? (?:mailbox|disk quota|storage) .{0,20}(?:full|exceeded)",
            r"(?:mailbox|mail ?box) has exceeded",
            r"insufficient (?:disk )?(?:space|storage)",
            r"not enough (?:storage|space)",
            r"disk quota",
            r"mailfolder is full|mailbox full",
            r"account is (?:over|full)",
            r"exceeds? (?:the )?(?:mailbox|storage|recipient'?s?) (?:quota|size|limit)",
            r"would exceed (?:the )?(?:quota|mailbox)",
            r"too much mail data",
            r"full mailbox|box is full",
            r"inbox is full",
            r"recipient.{0,20}mailbox.{0,20}full",
            r"out of (?:storage|disk) space",
            r"postfach (?:ist )?voll|bo[iî]te (?:aux lettres )?(?:est )?pleine|"
            r"casella (?:di posta )?(?:è )?piena|buz[oó]n (?:est[aá] )?lleno",
        ],
    ),
    (
        "exceedlimit",
        [r"message (?:header )?(?:size )?exceeds? (?:local )?limit", r"too many recipients"],
    ),
    (
        "suspend",
        [
            r"(?:account|mailbox|address|user) (?:has been |is |was )?(?:disabled|suspended|"
            r"deactivated|inactive|locked|frozen|closed|expired|blocked)",
            r"(?:disabled|suspended|inactive|deactivated|locked|expired) (?:account|mailbox|"
            r"recipient|user)",
            r"recipient (?:address )?(?:is )?(?:suspended|disabled|inactive)",
            r"is (?:currently )?(?:not active|inactive|suspended)",
            r"temporar(?:y|ily) (?:disabled|suspended|deactivated|locked)",
            r"mailbox (?:is )?currently (?:suspended|unavailable|disabled)",
            r"boite du destinataire archivee",
            r"account (?:is )?not (?:active|enabled)",
            r"account .{0,40}(?:is|has been|was) (?:disabled|suspended|deactivated|inactive)",
        ],
    ),
    (
        "hasmoved",
        [r"has been replaced by", r"address (?:has )?(?:changed|moved)", r"user has moved"],
    ),
    (
        "norelaying",
        [
            r"relay(?:ing)? (?:access )?(?:is )?(?:denied|not (?:permitted|allowed))",
            r"not (?:permitted|allowed) to relay",
            r"unable to relay",
            r"we do not relay",
            r"relay not permitted",
            r"no relaying",
            r"relaying (?:mail )?(?:to .{1,80} )?(?:is )?(?:denied|not allowed|prohibited)",
            r"not local host .{0,80}not a gateway",
            r"(?:is|are) not (?:in|on) (?:my|our) list of (?:allowed|accepted|valid) "
            r"(?:rcpthosts|domains|recipients)",
            r"mail server permanently rejected message \(#5\.4\.6\)",
        ],
    ),
    (
        "hostunknown",
        [
            r"host (?:or domain )?(?:name )?(?:not found|unknown)",
            r"unknown host|unroute?able (?:mail )?(?:domain|address)",
            r"(?<![@\w.-])(?:[a-z0-9-]+\.)+[a-z]{2,} does not exist",
            r"domain (?:name )?(?:not found|does not exist|doesn'?t exist|unknown|is not valid)",
            r"(?:no such|unknown|invalid|non-?existent|nonexistent) (?:host|domain|hostname)",
            r"name or service not known",
            r"no (?:mx|a|mail exchanger) (?:or a )?(?:record|host)s? (?:for|found)",
            r"(?:couldn't|could not|cannot|can ?not|unable to)"
            r" find (?:any )?(?:host|domain|mail exchanger)",
            r"name server: .{0,80}host not found",
            r"recipient (?:address )?domain (?:does not|doesn'?t) exist",
            r"domain (?:of|in) (?:the )?(?:recipient|address) .{0,40}(?:does not exist|not found)",
            r"host (?:\S+ )?not found",
            r"domain (?:is )?(?:not reachable|unreachable)",
            r"unknown domain|domain is unknown",
            r"message could not be delivered.{0,40}domain (?:name )?does not exist",
            r"illegal host/domain name",
            r"no mail servers? (?:for|found)",
            r"dns error: dns type 'mx' lookup of .{1,100} responded with code nxdomain",
            r"nxdomain",
            r"5\.1\.2\b",
        ],
    ),
    (
        "userunknown",
        [
            r"(?:user|mailbox|recipient|address|account|addressee|local ?part|alias)(?:\s+\S+)?\s+"
            r"(?:is )?(?:unknown|not (?:found|known|exist|existing|valid|listed|available)|"
            r"does not exist|doesn'?t exist|is not (?:valid|found|known)|unavailable|invalid)",
            r"(?:unknown|invalid|no such|non-?existent|nonexistent"
            r"|bad|illegal|unrecognized|undeliverable)"
            r" (?:local )?(?:user|mailbox|recipient|address"
            r"|account|addressee|e-?mail address|alias|"
            r"destination (?:mailbox|address))",
            r"no (?:such|valid) (?:user|mailbox|recipient|person|address|account)",
            r"(?:user|recipient|mailbox) (?:name )?(?:is )?not"
            r" (?:recognized|recognised|in the directory)",
            r"unknown or illegal alias",
            r"recipient address rejected: access denied",
            r"(?<!sender )address rejected(?!:)",
            r"(?:wasn'?t|was not|couldn'?t be|could not be) found at\b",
            r"not found in (?:the )?(?:recipient'?s? )?(?:e-?mail |mail )?(?:system|directory)",
            r"(?:no|not a valid) mailbox",
            r"(?:doesn'?t|does not|don'?t) have (?:a|an) (?:account|mailbox)",
            r"the email account that you tried to reach does not exist",
            r"is not a (?:valid|known) (?:user|mailbox|recipient)",
            r"mailbox not found|mailbox unavailable|mailbox is unavailable",
            r"(?:user|recipient|address|mailbox) (?:has been )?(?:deleted|removed|terminated)",
            r"not (?:a )?(?:valid|known) (?:recipient|user)",
            r"user doesn'?t exist|user does not exist|no such user",
            r"this user doesn't have a .{1,40} account",
            r"delivery to the following recipients? failed",
            r"recipient not found|recipient unknown|unknown recipient|user unknown",
            r"said: 550[ -](?:5\.1\.1|#5\.1\.1)",
            r"email address could not be found",
            r"there is no one at this address",
            r"not listed in (?:domino )?directory",
            r"unknown address|address unknown|invalid address",
            r"no mailbox here by that name",
            r"mailbox (?:does not|doesn'?t) exist|account (?:does not|doesn'?t) exist",
            r"address (?:does not|doesn'?t) exist",
            r"sorry, no mailbox",
            r"(?:user|address) (?:is )?not (?:a )?(?:local|valid)",
            r"unknown user|user not found|invalid recipient|invalid mailbox",
            r"destin(?:ation|atario) (?:address |mailbox )?(?:unknown|inexistente|desconocido)",
            r"no existe",
            r"invalid .{0,20}userid",
            r"check (?:if|that|whether) (?:the )?(?:e-?mail )?address is (?:correct|valid)",
            r"n'existe pas|inconnu|unbekannt|existiert nicht|sconosciut|non esiste|"
            r"desconocid|inexistente|no such account",
        ],
    ),
    (
        "networkerror",
        [
            r"mail (?:forwarding|routing) loop",
            r"too many hops",
            r"loop(?:ing)? (?:detected|back to myself)|routing loop",
            r"hop count exceeded",
            r"could not connect|connection (?:refused|timed out|reset|closed|lost)",
            r"no route to host|network is unreachable|host is unreachable",
            r"dns (?:lookup )?(?:failure|error)|temporary"
            r" (?:dns|name server|lookup) (?:failure|error)",
            r"malformed or unexpected name server reply",
            r"lost connection",
            r"unable to connect",
        ],
    ),
    (
        "spamdetected",
        [
            r"(?:spam|junk|bulk)(?: mail| e-?mail| message| content)? (?:detected|rejected|score|"
            r"filter|suspected)",
            r"(?:looks|look|appears?|considered|classified|identified|detected|marked|rated) "
            r"(?:like |as |to be )?(?:a )?(?:spam|junk|unsolicited)",
            r"(?:message|mail|content) (?:was |is |has been )?(?:classified|considered|"
            r"detected|determined|flagged|rejected) (?:as |to be )?(?:spam|junk|unsolicited)",
            r"\bspam\b.{0,40}(?:reject|refus|block|denied)",
            r"(?:reject|refus|block|denied).{0,40}\bspam\b",
            r"unsolicited (?:bulk )?(?:mail|e-?mail|message)",
            r"high probability of (?:being )?spam",
            r"\bspam\b",
            r"\bubE\b|content filter rejection",
        ],
    ),
    (
        "virusdetected",
        [
            r"virus|malware|infected|trojan|worm (?:detected|found)",
            r"potentially (?:harmful|malicious)",
        ],
    ),
    (
        "badreputation",
        [
            r"(?:poor|low|bad) (?:ip |sending |sender )?reputation",
            r"reputation (?:of|is)",
            r"sender ip reputation",
            r"not accepted due to (?:ip|sender) reputation",
        ],
    ),
    (
        "blocked",
        [
            r"(?:blocked|black ?listed|block ?listed|denied|banned|refused|rejected|listed) "
            r"(?:by|on|in|at) (?:an? )?(?:rbl|dnsbl|dnsrbl|blocklist|blacklist|spamhaus|"
            r"spamcop|sorbs|barracuda)",
            r"(?:rbl|dnsbl|blacklist|blocklist|black list|block list)",
            r"spamhaus|spamcop|sorbs\.net|barracudacentral|cbl\.abuseat|dnsbl",
            r"client host .{0,80}(?:blocked|rejected)",
            r"(?:your|the sender'?s?|sending|connecting|client) (?:ip|host|server|network|"
            r"address|ip address|mail server) (?:address )?.{0,40}(?:is |has been |was )?"
            r"(?:blocked|blacklisted|listed|banned|denied|rejected|not allowed)",
            r"(?:ip|host|address) (?:has been |is"
            r" )?(?:temporarily )?(?:blocked|banned|blacklisted)",
            r"connection (?:refused|rejected|denied) .{0,20}(?:ip|host|policy)",
            r"access denied|connections? not accepted",
            r"blocked using|blocked by|has been blocked|temporarily blocked|is blocked",
            r"mail from .{1,80} (?:refused|rejected|blocked)",
            r"not allowed to send mail|service (?:not available|unavailable), client host",
            r"\b(?:ip|host) .{0,80} (?:blocked|rejected)",
            r"sorbs|mail-abuse|rejected by your ip",
        ],
    ),
    (
        "notcompliantrfc",
        [
            r"(?:not|isn'?t|non[- ]?) ?(?:rfc|rfc ?5322|rfc ?822|rfc ?2822)[ -]?compliant",
            r"(?:multiple|duplicate) (?:addresses|header)s? (?:in|fields?)",
            r"message (?:contains|has) (?:an )?(?:invalid|bad|duplicate) header",
            r"(?:invalid|bad|illegal|malformed) (?:message )?header",
            r"does not (?:conform|comply) (?:with|to) rfc",
            r"rfc ?5322",
        ],
    ),
    (
        "policyviolation",
        [
            r"policy (?:violation|rejection|reasons)",
            r"(?:violat|against).{0,30}(?:policy|policies|terms)",
            r"(?:rejected|refused|blocked|denied) (?:due to|by|because of) .{0,30}policy",
            r"content (?:policy|rejected)",
            r"local policy",
            r"prohibited (?:attachment|content|file)",
            r"(?:attachment|file type|extension) (?:is"
            r" )?(?:not allowed|prohibited|blocked|rejected)",
            r"\bpolicy\b",
        ],
    ),
    (
        "filtered",
        [
            r"(?:filtered|rejected) by (?:the )?(?:recipient|user|mailbox|filter)",
            r"(?:due to|by) (?:the )?(?:recipient'?s?|user'?s?) (?:preferences|settings|filter)",
            r"refused by (?:the )?(?:recipient|user)",
            r"message (?:filtered|was filtered)",
            r"not (?:authorized|allowed|permitted) to (?:send|receive|post)",
            r"sender (?:is )?(?:not allowed|not authorized|rejected|denied)",
            r"you (?:do not|don'?t) have permission to (?:post|send)",
            r"only accepts? (?:mail|messages|posts) from",
            r"members? only|not a member",
            r"mail (?:filtered|refused)",
            r"rejected by (?:the )?recipient",
            r"does not accept (?:mail|email|messages) from",
        ],
    ),
    (
        "rejected",
        [
            r"sender (?:address )?(?:rejected|refused|denied|invalid|unknown|domain)",
            r"(?:domain|address) of sender|sender (?:verify|verification) failed",
            r"(?:mail|message|envelope) from .{0,60}(?:rejected|refused|denied)",
            r"(?:invalid|bad|unknown|unverifiable|non-?existent)"
            r" (?:sender|mail from|envelope sender)",
            r"return path|reverse path|mail from",
            r"sender",
        ],
    ),
    (
        "toomanyconn",
        [
            r"too many (?:connections|concurrent|simultaneous|sessions|smtp sessions)",
            r"connection (?:limit|rate) (?:exceeded|reached)",
            r"too many (?:errors|messages) from",
        ],
    ),
    (
        "speeding",
        [
            r"rate (?:limit|limited|exceeded)|(?:sending|message|mail) rate",
            r"too many (?:messages|mails|emails|recipients) (?:in|per|sent|this)",
            r"try (?:again )?(?:later|again later)",
            r"unusual rate",
        ],
    ),
    (
        "securityerror",
        [
            r"(?:authentication|auth) (?:required|failed|failure)",
            r"(?:tls|starttls|ssl|encryption) (?:is )?(?:required|must)",
            r"must (?:issue|use) (?:a )?starttls",
            r"(?:access|permission) denied",
            r"security (?:policy|violation|restriction)",
            r"not (?:authorized|permitted)",
        ],
    ),
    (
        "systemfull",
        [
            r"(?:system|disk|file system|server) (?:is )?(?:full|out of space)",
            r"insufficient system storage",
        ],
    ),
    (
        "expired",
        [
            r"(?:delivery|retry|queue) (?:time|period|timeout|lifetime) (?:expired|exceeded)",
            r"(?:message|mail) (?:has been |was )?(?:expired|timed out)",
            r"(?:could not|couldn't|has not been|hasn'?t been|was not|not) (?:be )?delivered "
            r"(?:for|in|within) .{0,30}(?:days|hours)",
            r"giving up|gave up",
            r"retry (?:time(?:out)? )?(?:limit )?(?:exceeded|expired|timeout)",
            r"too long in (?:the )?queue|been in (?:the )?queue too long|queue(?:d)? too long",
            r"undeliverable for .{0,20}(?:days|hours)",
            r"delivery (?:attempts? )?(?:will continue|delayed|has been delayed|is delayed)",
            r"(?:has|have) (?:been|not yet been) (?:delayed|delivered)",
            r"(?:maximum|max) (?:time|age|retries)",
            r"time ?out|timed out",
            r"not yet been delivered|will (?:retry|try again|continue)",
            r"message expired|expired",
        ],
    ),
    (
        "mailererror",
        [
            r"mailer (?:error|failed)|procmail|\bpipe to\b|exit (?:code|status)|"
            r"command (?:failed|died)|x-unix",
            r"local (?:delivery|mailer) (?:failed|error)",
            r"unknown mailer error|service unavailable",
        ],
    ),
    (
        "systemerror",
        [
            r"(?:system|server|internal|local|temporary) (?:error|failure|problem)",
            r"server (?:configuration|busy|not available)",
            r"(?:mail|message) system (?:error|problem)",
            r"out of memory|resources? (?:temporarily )?unavailable|i/o error",
            r"error in processing|processing error",
            r"temporary local problem",
            r"mail transport unavailable",
        ],
    ),
    ("contenterror", [r"(?:content|mime|encoding|attachment|header) (?:error|invalid|problem)"]),
    (
        "syntaxerror",
        [
            r"syntax error|command unrecognized|bad (?:command|sequence|syntax)|"
            r"unrecognized command|line too long",
        ],
    ),
    (
        "notaccept",
        [
            r"does not accept mail|null mx|accepts? no mail|not accepting mail",
            r"indicated no smtp service",
        ],
    ),
    ("failedstarttls", [r"starttls (?:failed|failure|error)|tls (?:handshake|negotiation) failed"]),
]

PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (reason, re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE))
    for reason, patterns in _TABLE
]


def match(text: str, skip: frozenset[str] = frozenset()) -> str | None:
    """The first reason whose patterns match ``text``, or None."""
    for reason, pattern in PATTERNS:
        if reason not in skip and pattern.search(text):
            return reason
    return None
