/* esc: the reply table (see esc.h). Codes as RFC 5321 4.2.2/4.2.3 define
 * them, enhanced codes from RFC 3463 section 3 and the IANA registry. */
#include "lib/esc.h"

#include <stdlib.h>

#include "lib/log.h"

static const struct esc_reply esc_table[R__COUNT] = {
	[R_GREETING] = { 220, NULL, "%s ESMTP%s%s" },
	[R_HELO] = { 250, NULL, "%s Hello [%s]" },
	[R_EHLO_LINE] = { 250, NULL, "%s" },
	[R_SUCCESS] = { 250, "2.0.0", "OK" },
	[R_SENDER_OK] = { 250, "2.1.0", "Sender OK" },
	[R_RCPT_OK] = { 250, "2.1.5", "Recipient OK" },
	[R_START_DATA] = { 354, NULL, "Start mail input; end with <CRLF>.<CRLF>" },
	[R_QUEUED] = { 250, "2.6.0", "<%s@%s> Queued mail for delivery" },
	[R_BYE] = { 221, "2.0.0", "Service closing transmission channel" },
	[R_UNRECOGNIZED] = { 500, "5.5.1", "Unrecognized command" },
	[R_LINE_TOO_LONG] = { 500, "5.5.2", "Line too long" },
	[R_BARE_NL_CMD] = { 500, "5.5.2", "Bare CR or LF in command line refused (RFC 5321 2.3.8)" },
	[R_HELO_SYNTAX] = { 501, "5.5.4", "Syntax: %s hostname" },
	[R_NEED_HELO] = { 503, "5.5.1", "Send EHLO or HELO first" },
	[R_NESTED_MAIL] = { 503, "5.5.1", "Sender already specified" },
	[R_NEED_MAIL] = { 503, "5.5.1", "Need MAIL before %s" },
	[R_NEED_RCPT] = { 503, "5.5.1", "No valid recipients" },
	[R_MAIL_SYNTAX] = { 501, "5.5.4", "Syntax: MAIL FROM:<address>" },
	[R_RCPT_SYNTAX] = { 501, "5.5.4", "Syntax: RCPT TO:<address>" },
	[R_BAD_SENDER] = { 501, "5.1.7", "Bad sender address syntax: %s" },
	[R_BAD_RCPT] = { 501, "5.1.3", "Bad recipient address syntax: %s" },
	/* RFC 6531 3.4, 3.7.4.1; RFC 6533 3 (5.6.7) */
	[R_UTF8_NEEDED] = { 553, "5.6.7", "Non-ASCII address needs MAIL FROM:<...> SMTPUTF8 (RFC 6531 3.4)" },
	[R_UTF8_BAD] = { 553, "5.6.7", "Malformed UTF-8 in address (RFC 6531 3.3, RFC 3629)" },
	/* RFC 8689 4.1: only under TLS; 5.7.10 "Encryption needed" (RFC 5248) */
	[R_REQUIRETLS_CLEAR] = { 530, "5.7.10", "REQUIRETLS needs an encrypted connection (RFC 8689 4.1)" },
	[R_PARAM_UNKNOWN] = { 555, "5.5.4", "Unsupported parameter %.40s" },
	[R_PARAM_BAD] = { 501, "5.5.4", "Invalid parameter %.40s" },
	[R_SIZE_EXCEEDED] = { 552, "5.3.4", "Message size exceeds fixed maximum message size" },
	[R_USER_UNKNOWN] = { 550, "5.1.1", "User unknown" },
	[R_RELAY_DENIED] = { 550, "5.7.1", "Unable to relay" },
	[R_TOO_MANY_RCPTS] = { 452, "4.5.3", "Too many recipients" },
	[R_NO_ARGS] = { 501, "5.5.4", "%s takes no arguments" },
	[R_DATA_BARE_LF] = { 554, "5.6.0", "Message refused: bare LF in message data (RFC 5321 2.3.8)" },
	[R_DATA_BARE_CR] = { 554, "5.6.0", "Message refused: bare CR in message data (RFC 5321 2.3.8)" },
	[R_DATA_LONG_LINE] = { 554, "5.6.0", "Message refused: a line is longer than %u octets (RFC 5322 2.1.1)" },
	[R_HEADER_TOO_BIG] = { 552, "5.3.4", "Message header exceeds max_header_size (%llu octets)" },
	[R_DMARC_REJECT] = { 550, "5.7.1", "Message refused: the DMARC policy of %s says reject (RFC 7489)" },
	[R_DNSBL] = { 554, "5.7.1", "Service unavailable; client [%s] blocked using %s" },
	[R_DATA_NUL] = { 554, "5.6.0", "Message refused: NUL octet in message data (RFC 5322 3.5)" },
	/* CHUNKING: RFC 3030 2, 4.2 */
	[R_BDAT_OK] = { 250, "2.0.0", "%llu octets received" },
	[R_BDAT_SYNTAX] = { 501, "5.5.4", "Syntax: BDAT chunk-size [LAST]" },
	[R_BDAT_MIXED] = { 503, "5.5.1", "DATA and BDAT cannot be mixed in one transaction" },
	[R_BINARYMIME_DATA] = { 503, "5.5.1", "BODY=BINARYMIME requires BDAT, not DATA (RFC 3030 3)" },
	[R_SPOOL_ERROR] = { 451, "4.3.0", "Local error in processing; try again later" },
	[R_SPOOL_FULL] = { 452, "4.3.1", "Insufficient system storage" },
	[R_VRFY_CANNOT] = { 252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery" },
	[R_EXPN_CANNOT] = { 252, "2.0.0", "Cannot EXPN list, but will accept message and attempt delivery" },
	[R_VRFY_OK] = { 250, "2.1.5", "<%s>" },
	[R_VRFY_SYNTAX] = { 501, "5.5.4", "Syntax: %s address" },
	[R_TURN] = { 502, "5.5.1", "TURN refused: RFC 2821 deprecates it as insecure; use ETRN" },
	[R_ETRN] = { 502, "5.5.1", "ETRN not offered: no domains are held here for dequeuing" },
	/* RFC 1985 4, 5 */
	[R_ETRN_SYNTAX] = { 501, "5.5.4", "Syntax: ETRN domain or ETRN @domain" },
	[R_ETRN_IN_TX] = { 503, "5.5.1", "ETRN not permitted during a mail transaction" },
	[R_NODE_DENIED] = { 459, "4.7.1", "Node %s not allowed: %s" },
	[R_NODE_BUSY] = { 458, "4.3.0", "Unable to queue messages for node %s: %s" },
	[R_NODE_NONE] = { 251, "2.0.0", "OK, no messages waiting for node %s" },
	[R_NODE_STARTED] = { 253, "2.0.0", "OK, %ld pending messages for node %s started" },
	/* RFC 2645 4 */
	[R_ATRN_OK] = { 250, "2.0.0", "OK now reversing the connection" },
	[R_ATRN_NONE] = { 453, "4.3.0", "You have no mail" },
	[R_ATRN_REFUSED] = { 450, "4.7.1", "ATRN request refused: %s may not dequeue %s" },
	[R_ATRN_LATER] = { 451, "4.3.0", "Unable to process ATRN request now: %s; try again later" },
	[R_ATRN_SYNTAX] = { 501, "5.5.4", "Syntax: ATRN [domain[,domain...]]" },
	[R_VERB] = { 502, "5.5.1", "VERB not offered: the server log shows every step" },
	[R_DSN_VERB] = { 502, "5.5.1", "DSN is an extension, not a command: add NOTIFY= to RCPT TO (RFC 3461)" },
	[R_NOT_OFFERED] = { 502, "5.5.1", "%s not offered by this server" },
	[R_TIMEOUT] = { 421, "4.4.2", "%s Error: timeout exceeded" },
	[R_SHUTDOWN] = { 421, "4.3.2", "%s Service shutting down" },
	[R_PAUSED] = { 421, "4.3.2", "%s Service paused for maintenance; try again later" },
	[R_HELP_LINE] = { 214, "2.0.0", "%s" },
	[R_HELP_END] = { 214, "2.0.0", "End of HELP info" },
	[R_HELP_UNKNOWN] = { 504, "5.5.1", "HELP topic unknown: %.40s" },
	/* RFC 3207 4 */
	[R_TLS_READY] = { 220, "2.0.0", "Ready to start TLS" },
	[R_TLS_ACTIVE] = { 503, "5.5.1", "TLS already active" },
	[R_TLS_SYNTAX] = { 501, "5.5.4", "Syntax error (no parameters allowed)" },
	[R_TLS_REQUIRED] = { 530, "5.7.0", "Must issue a STARTTLS command first" },
	/* RFC 4954 4, 6 and RFC 6409 4.2 */
	[R_AUTH_REQUIRED] = { 530, "5.7.0", "Authentication required" },
	[R_AUTH_OK] = { 235, "2.7.0", "Authentication successful" },
	[R_AUTH_FAILED] = { 535, "5.7.8", "Authentication credentials invalid" },
	[R_AUTH_CHALLENGE] = { 334, NULL, "" },
	[R_AUTH_USERNAME] = { 334, NULL, "VXNlcm5hbWU6" },  /* "Username:" */
	[R_AUTH_PASSWORD] = { 334, NULL, "UGFzc3dvcmQ6" },  /* "Password:" */
	[R_AUTH_ALREADY] = { 503, "5.5.1", "Already authenticated" },
	[R_AUTH_IN_TX] = { 503, "5.5.1", "AUTH not permitted during a mail transaction" },
	[R_AUTH_ENCRYPT] = { 538, "5.7.11", "Encryption required for requested authentication mechanism" },
	[R_AUTH_MECH] = { 504, "5.5.4", "Unrecognized authentication type" },
	[R_AUTH_DECODE] = { 501, "5.5.2", "Cannot decode response" },
	[R_AUTH_CANCELLED] = { 501, "5.0.0", "Authentication cancelled" },
	[R_AUTH_TOO_MANY] = { 421, "4.7.0", "%s Too many failed authentication attempts" },
	[R_AUTH_CRAM] = { 334, NULL, "%s" },   /* RFC 2195 2: the challenge in base64 */
	[R_AUTH_TEMP] = { 454, "4.7.0", "Temporary authentication failure" },
	[R_AUTH_NO_IR] = { 501, "5.5.2", "%s takes no initial response" },
	/* RFC 2645 */
	[R_ODMR_ONLY] = { 502, "5.5.1", "%s not offered: this is an On-Demand Mail Relay service (RFC 2645)" },
	[R_SENDER_NOT_OWNED] = { 553, "5.7.1", "Sender address <%s> not owned by user %s" },
	/* limits: RFC 5321 4.5.3, 3.1 */
	[R_TOO_MANY_CONNS] = { 421, "4.7.0", "%s Too many connections; try again later" },
	[R_TOO_MANY_CONNS_IP] = { 421, "4.7.0", "%s Too many connections from your address" },
	[R_TOO_FAST] = { 421, "4.7.0", "%s Connection rate limit exceeded; try again later" },
	[R_TOO_MANY_ERRORS] = { 421, "4.7.0", "%s Too many errors; closing" },
	[R_EARLY_TALKER] = { 554, "5.5.1", "Protocol error: you talked before the greeting (RFC 5321 3.1)" },
	/* SPF: RFC 7208 8.4 and 8.6, RFC 7372 3.2 */
	[R_SPF_FAIL] = { 550, "5.7.23", "SPF: %s does not designate %s as a permitted sender" },
	[R_SPF_FAIL_EXP] = { 550, "5.7.23", "%s" },   /* the domain's own explanation (exp=) */
	[R_SPF_TEMP] = { 451, "4.4.3", "SPF: temporary error looking up the policy of %s; try again later" },
	/* the test mode's fault rules (smtpd/faults.c): disconnect, greylist */
	[R_FAULT_CLOSING] = { 421, "4.4.2", "closing connection" },   /* after the hostname */
	[R_GREYLISTED] = { 451, "4.7.1", "Greylisted, try again later" },
};

const struct esc_reply *esc_get(enum esc_id id)
{
	if ((unsigned)id >= R__COUNT || esc_table[id].code == 0)
		log_panic("esc: reply %d has no row", (int)id);
	return &esc_table[id];
}
