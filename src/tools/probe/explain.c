/* explain: the reply-code and EHLO-keyword tables, and lookups in them.
 *
 * Basic codes: RFC 5321 section 4.2.2/4.2.3, plus the seeds' extra rows
 * (200 from RFC 876, 521 from RFC 1846/7504, 530 the "Sendmailism" later
 * standardised by RFC 3207/4954). Enhanced codes: RFC 3463 section 3
 * (class.subject.detail), RFC 3207 (STARTTLS), RFC 4954 section 6 (AUTH),
 * RFC 6531 (SMTPUTF8), RFC 7372 (email authentication). A pair row
 * overrides both where the combination has a well-known meaning.
 */
#include "tools/probe/explain.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

struct basic_row {
	int code;
	const char *rfc;     /* the standard's wording */
	const char *plain;   /* what it means, in plain words */
	const char *advice;  /* what to try; NULL when nothing to do */
};

/* RFC 5321 section 4.2.3, and the seeds' table (seed 004). */
static const struct basic_row basic_rows[] = {
	{ 200, "(nonstandard success response, see RFC 876)",
	  "success, in a form older than SMTP's reply codes", NULL },
	{ 211, "System status, or system help reply",
	  "status information about the server", NULL },
	{ 214, "Help message",
	  "help text for a person reading the session", NULL },
	{ 220, "<domain> Service ready",
	  "the server is ready: it names itself and often its software", NULL },
	{ 221, "<domain> Service closing transmission channel",
	  "goodbye: the server closes the connection as asked", NULL },
	{ 235, "Authentication successful (RFC 4954)",
	  "you are logged in", NULL },
	{ 250, "Requested mail action okay, completed",
	  "accepted", NULL },
	{ 251, "User not local; will forward to <forward-path>",
	  "accepted: the server will forward the message elsewhere", NULL },
	{ 252, "Cannot VRFY user, but will accept message and attempt delivery",
	  "the server will not confirm the address, but will take mail for it", NULL },
	{ 334, "Server challenge (RFC 4954)",
	  "the server asks for the next AUTH step (a base64 prompt)",
	  "answer with the base64 of what it asks for (Username:, Password:)" },
	{ 354, "Start mail input; end with <CRLF>.<CRLF>",
	  "send the message now; a line with a single dot ends it",
	  "type the headers, an empty line, the body, then a line with only '.'" },
	{ 421, "<domain> Service not available, closing transmission channel",
	  "the server is shutting the connection: overloaded, shutting down, "
	  "or it dislikes the client",
	  "try again later; if it persists, look at the server's logs and load" },
	{ 432, "A password transition is needed (RFC 4954)",
	  "the account must change its password before it can log in here",
	  "log in once with another mechanism or change the password" },
	{ 450, "Requested mail action not taken: mailbox unavailable",
	  "the mailbox is busy or temporarily blocked (greylisting, policy)",
	  "retry later; a real mail server will retry by itself" },
	{ 451, "Requested action aborted: local error in processing",
	  "the server had an internal problem",
	  "retry later; check the server's logs (disk, DNS, filters)" },
	{ 452, "Requested action not taken: insufficient system storage",
	  "the server is out of space or too many recipients were given",
	  "retry later or with fewer recipients; check the server's free disk" },
	{ 454, "TLS not available due to temporary reason (RFC 3207)",
	  "STARTTLS or AUTH failed for a temporary reason",
	  "retry later; check the server's certificate and TLS configuration" },
	{ 455, "Server unable to accommodate parameters",
	  "the server cannot handle the ESMTP parameters right now",
	  "retry later or without the parameters" },
	{ 500, "Syntax error, command unrecognised",
	  "the server does not know this command, or the line was too long",
	  "check the spelling; typing errors cannot be backspaced in telnet" },
	{ 501, "Syntax error in parameters or arguments",
	  "the command is known but its arguments are wrong",
	  "check the address syntax: MAIL FROM:<user@domain>" },
	{ 502, "Command not implemented",
	  "the server knows the command but does not offer it", NULL },
	{ 503, "Bad sequence of commands",
	  "the command came out of order (e.g. RCPT before MAIL, or AUTH needed)",
	  "follow the order EHLO, MAIL, RCPT, DATA; log in first if required" },
	{ 504, "Command parameter not implemented",
	  "the server does not support that parameter or AUTH mechanism",
	  "try another mechanism or leave the parameter out" },
	{ 521, "<domain> does not accept mail (RFC 1846, RFC 7504)",
	  "this host never accepts mail",
	  "look up the domain's MX records: mail should go elsewhere" },
	{ 530, "Access denied (a Sendmailism; RFC 4954: authentication required)",
	  "the server wants you to log in (or to start TLS) first",
	  "use STARTTLS and AUTH before MAIL FROM" },
	{ 534, "Authentication mechanism is too weak (RFC 4954)",
	  "the server refuses this AUTH mechanism",
	  "use a stronger mechanism, or start TLS first" },
	{ 535, "Authentication credentials invalid (RFC 4954)",
	  "wrong user name or password",
	  "check the user name (often the whole address) and the password" },
	{ 538, "Encryption required for requested authentication mechanism (RFC 4954)",
	  "the password may only be sent over TLS",
	  "use STARTTLS first" },
	{ 550, "Requested action not taken: mailbox unavailable",
	  "refused: the mailbox does not exist, or policy forbids it",
	  "check the address; read the enhanced code and the text for the reason" },
	{ 551, "User not local; please try <forward-path>",
	  "the server does not take mail for this user; it names where to send it", NULL },
	{ 552, "Requested mail action aborted: exceeded storage allocation",
	  "the message is too big or the mailbox is full",
	  "send a smaller message; the recipient must clean up the mailbox" },
	{ 553, "Requested action not taken: mailbox name not allowed",
	  "the address is not acceptable (bad syntax or forbidden)",
	  "check the address for typos and forbidden characters" },
	{ 554, "Transaction failed (or, in a greeting: no SMTP service here)",
	  "the server refused the whole transaction, often for policy or spam reasons",
	  "read the text; check blocklists for your IP address" },
	{ 555, "MAIL FROM/RCPT TO parameters not recognized or not implemented",
	  "the server does not know an ESMTP parameter you used",
	  "leave out parameters the EHLO reply does not announce" },
};

struct esc_row {
	const char *esc;     /* "X.s.d": the class is filled in by the reply */
	const char *rfc;
	const char *plain;
	const char *advice;
};

/* RFC 3463 section 3 (3.1 to 3.8), and later registrations. */
static const struct esc_row esc_rows[] = {
	{ "X.0.0", "Other undefined status", "no detail given beyond the class", NULL },
	{ "X.1.0", "Other address status", "something is wrong with an address", NULL },
	{ "X.1.1", "Bad destination mailbox address",
	  "the recipient does not exist here (user unknown)",
	  "check the spelling of the part before the @" },
	{ "X.1.2", "Bad destination system address",
	  "the recipient's domain does not exist or does not take mail",
	  "check the part after the @ and its MX records" },
	{ "X.1.3", "Bad destination mailbox address syntax",
	  "the recipient address is malformed", "write it as user@domain" },
	{ "X.1.4", "Destination mailbox address ambiguous",
	  "the recipient address matches several mailboxes", NULL },
	{ "X.1.5", "Destination address valid", "the recipient is accepted", NULL },
	{ "X.1.6", "Destination mailbox has moved, no forwarding address",
	  "the recipient has left", NULL },
	{ "X.1.7", "Bad sender's mailbox address syntax",
	  "the sender address is malformed or its domain does not resolve",
	  "use a real sender address whose domain exists" },
	{ "X.1.8", "Bad sender's system address",
	  "the sender's domain does not exist or cannot take replies",
	  "use a sender in a domain with MX or A records" },
	{ "X.1.10", "Recipient address has null MX (RFC 7505)",
	  "the recipient domain says it takes no mail", NULL },
	{ "X.2.0", "Other or undefined mailbox status",
	  "the mailbox exists but something is wrong with it", NULL },
	{ "X.2.1", "Mailbox disabled, not accepting messages",
	  "the mailbox is switched off", NULL },
	{ "X.2.2", "Mailbox full", "the recipient's mailbox is over quota",
	  "the recipient must make room" },
	{ "X.2.3", "Message length exceeds administrative limit",
	  "the message is too big for this mailbox", "send a smaller message" },
	{ "X.2.4", "Mailing list expansion problem",
	  "a mailing list could not be expanded", NULL },
	{ "X.3.0", "Other or undefined mail system status",
	  "the receiving mail system has a problem", NULL },
	{ "X.3.1", "Mail system full", "the server's disk is full",
	  "free disk space on the server" },
	{ "X.3.2", "System not accepting network messages",
	  "the server is shutting down or not taking mail now", NULL },
	{ "X.3.3", "System not capable of selected features",
	  "the server does not support a feature the message needs",
	  "leave out the feature (the command may be misspelt)" },
	{ "X.3.4", "Message too big for system",
	  "the message exceeds the server's size limit (see SIZE in EHLO)",
	  "send a smaller message" },
	{ "X.3.5", "System incorrectly configured",
	  "the server's configuration is broken (e.g. mail loops back to itself)",
	  "check the server's configuration and its MX records" },
	{ "X.4.0", "Other or undefined network or routing status",
	  "a network or routing problem", NULL },
	{ "X.4.1", "No answer from host", "the next server did not answer", NULL },
	{ "X.4.2", "Bad connection", "the connection broke off", NULL },
	{ "X.4.3", "Directory server failure",
	  "a lookup failed (usually DNS)", "check the server's DNS resolver" },
	{ "X.4.4", "Unable to route",
	  "no route to the destination (no MX or A record)",
	  "check the destination domain's MX records" },
	{ "X.4.5", "Mail system congestion", "the server is overloaded",
	  "retry later" },
	{ "X.4.6", "Routing loop detected",
	  "the message went round in a loop (too many Received: headers)",
	  "check forwarding and MX configuration" },
	{ "X.4.7", "Delivery time expired",
	  "the message could not be delivered in time and was given up", NULL },
	{ "X.5.0", "Other or undefined protocol status",
	  "a protocol problem", NULL },
	{ "X.5.1", "Invalid command",
	  "the command is not known or not allowed here",
	  "check the spelling of the command" },
	{ "X.5.2", "Syntax error", "the command's syntax is wrong",
	  "check the arguments (addresses in <angle brackets>)" },
	{ "X.5.3", "Too many recipients",
	  "more recipients than the server allows in one message",
	  "send in several transactions" },
	{ "X.5.4", "Invalid command arguments",
	  "an argument or ESMTP parameter is wrong or not supported", NULL },
	{ "X.5.5", "Wrong protocol version", "the protocol version is wrong", NULL },
	{ "X.5.6", "Authentication exchange line is too long (RFC 4954)",
	  "the AUTH line is longer than the server takes", NULL },
	{ "X.6.0", "Other or undefined media error",
	  "a problem with the message's content", NULL },
	{ "X.6.1", "Media not supported", "the content type is not accepted", NULL },
	{ "X.6.2", "Conversion required and prohibited",
	  "the message would need converting, which is forbidden", NULL },
	{ "X.6.3", "Conversion required but not supported",
	  "the message would need a conversion the server cannot do",
	  "send 7-bit text, or use a server that announces 8BITMIME" },
	{ "X.6.4", "Conversion with loss performed",
	  "the message was converted and lost something", NULL },
	{ "X.6.5", "Conversion failed", "converting the message failed", NULL },
	{ "X.6.7", "Non-ASCII addresses not permitted (RFC 6531)",
	  "the address has non-ASCII characters and SMTPUTF8 was not used", NULL },
	{ "X.7.0", "Other or undefined security status",
	  "a security or policy problem (often: authentication required)",
	  "log in (AUTH) or start TLS first" },
	{ "X.7.1", "Delivery not authorized, message refused",
	  "not authorized: policy refuses this message or this recipient",
	  "check relay permissions and blocklists" },
	{ "X.7.2", "Mailing list expansion prohibited",
	  "you may not send to this list", NULL },
	{ "X.7.3", "Security conversion required but not possible",
	  "the message would need a security conversion that cannot be done", NULL },
	{ "X.7.4", "Security features not supported",
	  "the server does not support the security feature asked for", NULL },
	{ "X.7.5", "Cryptographic failure",
	  "a signature or encryption could not be checked", NULL },
	{ "X.7.6", "Cryptographic algorithm not supported",
	  "the algorithm used is not supported", NULL },
	{ "X.7.7", "Message integrity failure",
	  "the message was changed on the way", NULL },
	{ "X.7.8", "Authentication credentials invalid (RFC 4954)",
	  "wrong user name or password",
	  "check the user name (often the whole address) and the password" },
	{ "X.7.9", "Authentication mechanism is too weak (RFC 4954)",
	  "the server refuses this AUTH mechanism", "start TLS first or use another" },
	{ "X.7.10", "Encryption needed (RFC 5248)",
	  "this needs an encrypted connection", "use STARTTLS first" },
	{ "X.7.11", "Encryption required for requested authentication mechanism",
	  "the password may only be sent over TLS", "use STARTTLS first" },
	{ "X.7.12", "A password transition is needed (RFC 4954)",
	  "the password must be changed first", NULL },
	{ "X.7.13", "User account disabled", "the account is switched off", NULL },
	{ "X.7.14", "Trust relationship required",
	  "the servers must trust each other for this", NULL },
	{ "X.7.23", "SPF validation failed (RFC 7372)",
	  "the sender domain's SPF record does not allow your IP address",
	  "send from an address whose SPF record lists your server" },
	{ "X.7.25", "Reverse DNS validation failed (RFC 7372)",
	  "your IP address has no matching PTR record",
	  "ask your provider for a PTR record naming your mail server" },
	{ "X.7.26", "Multiple authentication checks failed (RFC 7372)",
	  "SPF, DKIM or DMARC checks failed", NULL },
};

struct pair_row {
	int code;
	const char *esc;
	const char *plain;
	const char *advice;
};

/* Combinations whose meaning is more precise than either half. */
static const struct pair_row pair_rows[] = {
	{ 550, "5.7.1", "relaying denied: the server does not accept mail for "
	  "that domain from you",
	  "this is correct for a stranger sending to an outside domain; to relay, "
	  "log in (AUTH) or send from a trusted network" },
	{ 554, "5.7.1", "refused by policy: relaying denied, or the client or "
	  "sender is blocked",
	  "read the text; check blocklists and relay permissions" },
	{ 530, "5.7.0", "authentication required: log in before sending",
	  "use AUTH (after STARTTLS) with --user" },
	{ 530, "5.7.11", "encryption required: start TLS before this",
	  "use STARTTLS first" },
	{ 535, "5.7.8", "authentication failed: wrong user name or password",
	  "check the credentials; the user name is often the whole address" },
	{ 454, "4.7.0", "TLS or authentication temporarily unavailable",
	  "retry later; check the server's certificate files and its logs" },
	{ 550, "5.1.1", "user unknown: no such mailbox here",
	  "check the part before the @; ask the recipient for the right address" },
	{ 250, "2.6.0", "the message is queued for delivery",
	  "the text usually holds the queue id: search the server's log for it" },
	{ 500, "5.3.3", "unrecognized command", "check the spelling" },
};

/* -------------------------------------------------------------------- */

static const struct basic_row *explain_basic(int code)
{
	for (size_t i = 0; i < ARRAY_LEN(basic_rows); i++)
		if (basic_rows[i].code == code)
			return &basic_rows[i];
	return NULL;
}

/* "5.7.1" matches row "X.7.1": compare everything after the class digit. */
static const struct esc_row *explain_esc(const char *esc)
{
	if (esc[0] == '\0')
		return NULL;
	for (size_t i = 0; i < ARRAY_LEN(esc_rows); i++)
		if (strcmp(esc_rows[i].esc + 1, esc + 1) == 0)
			return &esc_rows[i];
	return NULL;
}

static const struct pair_row *explain_pair(const struct explain_codes *c)
{
	for (size_t i = 0; i < ARRAY_LEN(pair_rows); i++)
		if (pair_rows[i].code == c->code && strcmp(pair_rows[i].esc, c->esc) == 0)
			return &pair_rows[i];
	return NULL;
}

/* RFC 3463 section 3.1 and RFC 5321 section 4.2.1: the first digit. */
static const char *explain_class(int digit)
{
	switch (digit) {
	case 2: return "success: the command was accepted";
	case 3: return "intermediate: the server waits for more input";
	case 4: return "temporary failure: the same command may work later";
	case 5: return "permanent failure: repeating the command will not help";
	default: return "not a valid reply class";
	}
}

/* RFC 5321 section 4.2.1: the second digit of a basic code. */
static const char *explain_category(int digit)
{
	static const char *const names[] = {
		"syntax", "information", "connections", "unspecified",
		"unspecified", "mail system",
	};
	return digit >= 0 && digit <= 5 ? names[digit] : "unknown category";
}

/* RFC 3463 section 3.2 to 3.8: the subject of an enhanced code. */
static const char *explain_subject(int s)
{
	static const char *const names[] = {
		"other or undefined status", "addressing status", "mailbox status",
		"mail system status", "network and routing status",
		"mail delivery protocol status", "message content or media status",
		"security or policy status",
	};
	return s >= 0 && s <= 7 ? names[s] : "unknown subject";
}

/* -------------------------------------------------------------------- */

/* "d.d{1,3}.d{1,3}" at s (RFC 3463 section 2); returns its length or 0. */
static size_t explain_scan_esc(const char *s)
{
	size_t i = 0;
	if (s[0] < '2' || s[0] > '5' || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (isdigit((unsigned char)s[i]) && i - start < 4)
			i++;
		if (i == start || i - start > 3)
			return 0;
		if (part == 0 && s[i++] != '.')
			return 0;
	}
	if (s[i] != '\0' && s[i] != ' ' && s[i] != '\t')
		return 0;
	return i;
}

static size_t explain_scan_code(const char *s)
{
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]))
		return 0;
	if (s[3] != '\0' && s[3] != ' ' && s[3] != '-' && s[3] != '\t')
		return 0;
	return 3;
}

bool explain_parse(const char *s, struct explain_codes *out)
{
	out->code = 0;
	out->esc[0] = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = explain_scan_code(s);
	if (n) {
		out->code = atoi(s);
		s += n;
		while (*s == ' ' || *s == '-' || *s == '\t')
			s++;
	}
	size_t e = explain_scan_esc(s);
	if (e && e < sizeof out->esc) {
		memcpy(out->esc, s, e);
		out->esc[e] = '\0';
	}
	return out->code != 0 || out->esc[0] != '\0';
}

const char *explain_short(const struct explain_codes *c)
{
	const struct pair_row *p = explain_pair(c);
	if (p)
		return p->plain;
	const struct esc_row *e = explain_esc(c->esc);
	if (e && strcmp(strrchr(e->esc, '.'), ".0") != 0)
		return e->plain;     /* X.s.0 says less than the basic code */
	const struct basic_row *b = explain_basic(c->code);
	if (b)
		return b->plain;
	if (e)
		return e->plain;
	int cls = c->code ? c->code / 100 : c->esc[0] - '0';
	return explain_class(cls);
}

static void explain_long_basic(const struct explain_codes *c, struct buf *out)
{
	const struct basic_row *b = explain_basic(c->code);
	if (b) {
		buf_printf(out, "%d: %s\n     %s.\n", c->code, b->rfc, b->plain);
		return;
	}
	buf_printf(out, "%d: not in the table. Class %d, %s; category %d, %s.\n",
		   c->code, c->code / 100, explain_class(c->code / 100),
		   c->code / 10 % 10, explain_category(c->code / 10 % 10));
}

static void explain_long_esc(const struct explain_codes *c, struct buf *out)
{
	const struct esc_row *e = explain_esc(c->esc);
	int cls = c->esc[0] - '0', subj = atoi(c->esc + 2);
	if (e) {
		buf_printf(out, "%s: %s (RFC 3463: %s, %s)\n     %s.\n", c->esc, e->rfc,
			   explain_class(cls), explain_subject(subj), e->plain);
		return;
	}
	buf_printf(out, "%s: not in the table. Class %d, %s; subject %d, %s.\n",
		   c->esc, cls, explain_class(cls), subj, explain_subject(subj));
}

static const char *explain_advice(const struct explain_codes *c)
{
	const struct pair_row *p = explain_pair(c);
	if (p)
		return p->advice;
	const struct esc_row *e = explain_esc(c->esc);
	if (e && e->advice)
		return e->advice;
	const struct basic_row *b = explain_basic(c->code);
	return b ? b->advice : NULL;
}

void explain_long(const struct explain_codes *c, struct buf *out)
{
	if (c->code)
		explain_long_basic(c, out);
	if (c->esc[0])
		explain_long_esc(c, out);
	if (c->code && c->esc[0] && c->code / 100 != c->esc[0] - '0')
		buf_puts(out, "Note: the basic and enhanced codes disagree on the class.\n");
	buf_printf(out, "In short: %s.\n", explain_short(c));
	const char *a = explain_advice(c);
	if (a)
		buf_printf(out, "Try: %s.\n", a);
}

/* -------------------------------------------------------------------- */

struct ext_row {
	const char *keyword;
	const char *meaning;
};

/* EHLO keywords: the IANA SMTP Service Extensions registry, and the
 * private ones the seeds' Exchange servers announce. */
static const struct ext_row ext_rows[] = {
	{ "PIPELINING", "commands may be sent in groups without waiting (RFC 2920)" },
	{ "SIZE", "largest message accepted, in octets; 0 or none: no limit (RFC 1870)" },
	{ "8BITMIME", "8-bit message bodies accepted (RFC 6152)" },
	{ "ENHANCEDSTATUSCODES", "replies carry class.subject.detail codes (RFC 2034)" },
	{ "DSN", "delivery status notifications: NOTIFY, RET, ENVID, ORCPT (RFC 3461)" },
	{ "HELP", "HELP command answers (RFC 5321)" },
	{ "STARTTLS", "the session can be encrypted with TLS (RFC 3207)" },
	{ "AUTH", "log in with the listed SASL mechanisms (RFC 4954)" },
	{ "SMTPUTF8", "internationalized (UTF-8) addresses accepted (RFC 6531)" },
	{ "CHUNKING", "BDAT: message sent in sized chunks (RFC 3030)" },
	{ "BINARYMIME", "binary message bodies with BDAT (RFC 3030)" },
	{ "ETRN", "a backup MX can be asked to flush a domain's queue (RFC 1985)" },
	{ "ATRN", "authenticated TURN for dial-up domains (RFC 2645)" },
	{ "TURN", "roles may be reversed (RFC 821; obsolete, insecure)" },
	{ "VRFY", "addresses may be verified (RFC 5321)" },
	{ "EXPN", "mailing lists may be expanded (RFC 5321)" },
	{ "VERB", "verbose mode (Sendmail)" },
	{ "DELIVERBY", "deliver-by time limits (RFC 2852)" },
	{ "REQUIRETLS", "the sender may require TLS all the way (RFC 8689)" },
	{ "MT-PRIORITY", "message priorities (RFC 6710)" },
	{ "FUTURERELEASE", "delivery held until a given time (RFC 4865)" },
	{ "NO-SOLICITING", "no solicitations wanted (RFC 3865)" },
	{ "LIMITS", "the server's limits on recipients and transactions (RFC 9422)" },
	{ "XCLIENT", "a trusted proxy may pass the real client's data (Postfix)" },
	{ "XFORWARD", "a trusted filter may pass the original client's data (Postfix)" },
	{ "X-EXPS", "Exchange: authentication between Exchange servers" },
	{ "X-LINK2STATE", "Exchange: routing state between Exchange servers" },
	{ "XEXCH50", "Exchange: Exchange-specific message properties" },
	{ "TLS", "the session can be encrypted (old name of STARTTLS)" },
	{ "DSN-SUCCESS", "success reports (nonstandard)" },
};

const char *explain_ext(const char *keyword)
{
	size_t n = strcspn(keyword, " =\r\n\t");
	for (size_t i = 0; i < ARRAY_LEN(ext_rows); i++)
		if (strlen(ext_rows[i].keyword) == n &&
		    strncasecmp(ext_rows[i].keyword, keyword, n) == 0)
			return ext_rows[i].meaning;
	return NULL;
}
