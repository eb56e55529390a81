/* transcript: the recorder of a session's SMTP conversation for the test
 * mode (transcripts = yes): every line in and out with its time since the
 * session began and its input batch (the lines that came in one read),
 * notes of what is not a line (TLS, PROXY, the message's size, the end),
 * AUTH with its credentials masked, and each message's client lint
 * (lint.h) linked to its queue id, into the store (spool/sessions.h).
 *
 * The session calls these behind one test of s->rec (NULL when
 * transcripts are off: no cost beyond it). A record is bounded by
 * transcript_max_size octets of text: past it one note, then only a count
 * of the lines left out.
 */
#ifndef TERN_TRANSCRIPT_H
#define TERN_TRANSCRIPT_H

#include <stddef.h>

struct session;
struct transcript;

/* A recorder for a session starting (client address and listener known),
 * or NULL when transcripts are off or the store is missing. */
struct transcript *transcript_begin(struct session *s);
/* The session is closed (why: session_close's reason); the recorder goes. */
void transcript_end(struct session *s, const char *why);

/* Input came (the read callback: a new batch); the session has done what
 * it could with its input (its length noted). */
void transcript_arrived(struct session *s);
void transcript_seen(struct session *s);

/* A command line as framed (CRLF gone); in ST_AUTH a SASL response. */
void transcript_in(struct session *s, const char *line);
/* A reply line (CRLF gone). */
void transcript_out(struct session *s, const char *line, size_t n);
/* A note of the server's: what is not a line (an AUTH outcome, ...). */
void transcript_note(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A command line with a bare CR or LF, or a NUL: refused. */
void transcript_bare(struct session *s);
/* The TLS handshake is done: protocol, cipher, SNI, client certificate. */
void transcript_tls(struct session *s);
/* A PROXY header named the client (s->ip now); via: the proxy's address. */
void transcript_proxy(struct session *s, int version, const char *via);
/* Message octets as stored (after unstuffing). */
void transcript_data(struct session *s, const char *p, size_t n);
/* The end of the message's data (msgin_end done): its note and lint. */
void transcript_data_end(struct session *s);
/* The transaction goes (committed, refused or aborted): a message that
 * reached its data is linked to the session with its lint. */
void transcript_tx_end(struct session *s);

#endif
