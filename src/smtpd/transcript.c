/* transcript: a session's recorder (see transcript.h), writing through
 * the store (spool/sessions.h), which batches the writes. */
#include "smtpd/transcript.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "net/tls.h"
#include "smtpd/lint.h"
#include "smtpd/session_priv.h"
#include "spool/sessions.h"

#define TRANSCRIPT_BATCHES 64   /* input batches not yet all read, at most */

struct transcript {
	struct sessions *st;
	int64_t id;                 /* the store's, unique across restarts */
	struct timespec t0;         /* monotonic, at the start */
	unsigned seq;               /* lines recorded */
	uint64_t size, max;         /* octets of text recorded, transcript_max_size */
	bool truncated;
	uint64_t dropped;           /* lines left out since */
	/* input batches: the cumulative input offset where each began */
	uint64_t added;             /* octets that came in so far */
	size_t seen;                /* the input's length when last looked at */
	unsigned nbatch, nring, batch;
	struct { uint64_t start; unsigned batch; } ring[TRANSCRIPT_BATCHES];
	/* what the session list shows, as last written */
	char client[INET6_ADDRSTRLEN], helo[SESSION_HELO_MAX + 1], user[AUTH_FIELD_MAX + 1];
	char tls[256];
	char last_out[160];         /* the last reply line */
	char verb[16];              /* the last command's verb */
	bool quit;
	/* the transaction */
	unsigned mail_seq;          /* its MAIL line */
	struct lint lint;           /* its warnings (and those since the last one) */
	struct lint_scan scan;
	bool scanning;              /* scan began (lint_scan_init) */
	char chunks[160];           /* BDAT chunk sizes */
	unsigned nchunks;
};

static int64_t transcript_ms(const struct transcript *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t->t0.tv_sec) * 1000 +
	       (now.tv_nsec - t->t0.tv_nsec) / 1000000;
}

/* One line of text, bounded: valid UTF-8 kept, else 8-bit octets as '?'. */
static void transcript_line(struct transcript *t, enum sessions_dir dir, const char *p, size_t n)
{
	if (t->truncated) {
		t->dropped++;
		return;
	}
	if (t->max && t->size + n > t->max) {
		t->truncated = true;
		t->dropped++;
		char note[128];
		int k = snprintf(note, sizeof note, "transcript truncated at %llu octets "
		                 "(transcript_max_size): later lines only counted",
		                 (unsigned long long)t->size);
		sessions_line(t->st, t->id, t->seq++, transcript_ms(t), SESSIONS_NOTE, t->batch, note,
		              (size_t)k);
		return;
	}
	t->size += n;
	struct buf b = BUF_INIT;
	buf_append(&b, p, n);
	if (!addr_utf8_valid(b.data ? b.data : "", n))
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)b.data[i] >= 0x80)
				b.data[i] = '?';
	sessions_line(t->st, t->id, t->seq++, transcript_ms(t), dir, t->batch, b.data ? b.data : "",
	              n);
	buf_free(&b);
}

/* The session list's fields, written when one changed (or at the end). */
static void transcript_sync(struct session *s, const char *ended)
{
	struct transcript *t = s->rec;
	if (!ended && !strcmp(t->client, s->ip) && !strcmp(t->helo, s->helo) &&
	    !strcmp(t->user, s->user))
		return;
	snprintf(t->client, sizeof t->client, "%s", s->ip);
	snprintf(t->helo, sizeof t->helo, "%s", s->helo);
	snprintf(t->user, sizeof t->user, "%s", s->user);
	struct sessions_meta m = { t->client, t->helo, t->tls, t->user, ended ? ended : "",
	                           t->dropped };
	sessions_update(t->st, t->id, &m);
}

/* "127.0.0.1:2525 submission": the address the client came to (the
 * session's, as `listen` spells it), and the listener's modes. */
static void transcript_listener(struct session *s, char *out, size_t n)
{
	unsigned m = s->client.modes;
	snprintf(out, n, "%s%s%s%s%s%s", s->local, m & CONF_LISTEN_SUBMISSION ? " submission" : "",
	         m & CONF_LISTEN_SMTPS ? " smtps" : "", m & CONF_LISTEN_STARTTLS ? " starttls" : "",
	         m & CONF_LISTEN_PROXY ? " proxy" : "", m & CONF_LISTEN_ODMR ? " odmr" : "");
}

struct transcript *transcript_begin(struct session *s)
{
	if (!s->srv->transcripts)
		return NULL;
	struct transcript *t = util_xcalloc(1, sizeof *t);
	t->st = s->srv->transcripts;
	clock_gettime(CLOCK_MONOTONIC, &t->t0);
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	char listener[INET6_ADDRSTRLEN + 64];
	transcript_listener(s, listener, sizeof listener);
	t->id = sessions_begin(t->st, (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000, s->ip,
	                       listener, s->conf->transcript_keep);
	if (t->id == 0) {
		free(t);
		return NULL;
	}
	t->max = s->conf->transcript_max_size;
	snprintf(t->client, sizeof t->client, "%s", s->ip);
	return t;
}

/* How the session ended, in words. */
static void transcript_ending(struct session *s, const char *why, char *out, size_t n)
{
	struct transcript *t = s->rec;
	if (t->quit)
		snprintf(out, n, "QUIT");
	else if (!strcmp(why, "client closed"))
		snprintf(out, n, "client hung up%s", s->state == ST_DATA || s->state == ST_BDAT ?
		         " during the message" : "");
	else if (!strcmp(why, "closed by us") && t->last_out[0])
		snprintf(out, n, "closed by the server after: %s", t->last_out);
	else
		snprintf(out, n, "%s", why);
}

void transcript_end(struct session *s, const char *why)
{
	struct transcript *t = s->rec;
	char ended[256];
	transcript_ending(s, why, ended, sizeof ended);
	char note[300];
	int k = snprintf(note, sizeof note, "session ended: %s", ended);
	transcript_line(t, SESSIONS_NOTE, note, (size_t)k < sizeof note ? (size_t)k : sizeof note - 1);
	transcript_sync(s, ended);
	free(t);
	s->rec = NULL;
}

/* ---- input batches ---- */

void transcript_arrived(struct session *s)
{
	struct transcript *t = s->rec;
	size_t len = evbuffer_get_length(bufferevent_get_input(s->bev));
	if (len <= t->seen)
		return;
	if (t->nring == TRANSCRIPT_BATCHES)
		t->nring--;   /* a client that sends and never waits: the last two merge */
	t->ring[t->nring].start = t->added;
	t->ring[t->nring].batch = ++t->nbatch;
	t->nring++;
	t->added += len - t->seen;
	t->seen = len;
}

void transcript_seen(struct session *s)
{
	struct transcript *t = s->rec;
	t->seen = evbuffer_get_length(bufferevent_get_input(s->bev));
	transcript_sync(s, NULL);
}

/* The batch of the input line of n octets (CRLF included) just taken. */
static void transcript_batch(struct session *s, size_t n)
{
	struct transcript *t = s->rec;
	uint64_t left = evbuffer_get_length(bufferevent_get_input(s->bev)) + n;
	uint64_t off = t->added > left ? t->added - left : 0;
	while (t->nring > 1 && t->ring[1].start <= off) {
		memmove(&t->ring[0], &t->ring[1], (t->nring - 1) * sizeof t->ring[0]);
		t->nring--;
	}
	if (t->nring)
		t->batch = t->ring[0].batch;
}

/* ---- lines ---- */

void transcript_in(struct session *s, const char *line)
{
	struct transcript *t = s->rec;
	size_t n = strlen(line);
	transcript_batch(s, n + 2);
	if (s->state == ST_AUTH)   /* RFC 4954 4: a SASL response, never shown */
		return transcript_line(t, SESSIONS_IN, "********", 8);
	size_t v = strcspn(line, " ");
	snprintf(t->verb, sizeof t->verb, "%.*s", (int)v, line);
	if (!strcasecmp(t->verb, "AUTH")) {   /* the mechanism; the initial response masked */
		size_t mech = strcspn(line + v + (line[v] == ' '), " ");
		size_t keep = v + (line[v] == ' ') + mech;
		char masked[64];
		int k = snprintf(masked, sizeof masked, "%.*s%s", (int)(keep < 40 ? keep : 40), line,
		                 line[keep] ? " ********" : "");
		return transcript_line(t, SESSIONS_IN, masked, (size_t)k < sizeof masked ? (size_t)k :
		                       sizeof masked - 1);
	}
	t->quit |= !strcasecmp(t->verb, "QUIT");
	if (!strcasecmp(t->verb, "MAIL") && !s->tx)
		t->mail_seq = t->seq;
	if (!strcasecmp(t->verb, "BDAT") && t->nchunks++ < 16) {
		size_t used = strlen(t->chunks);
		snprintf(t->chunks + used, sizeof t->chunks - used, "%s%s", used ? ", " : "",
		         line + v + (line[v] == ' '));
	}
	transcript_line(t, SESSIONS_IN, line, n);
}

/* A 503 the client provoked (RFC 5321 4.1.4's order of commands). */
static void transcript_sequence(struct session *s)
{
	struct transcript *t = s->rec;
	if (!strcasecmp(t->verb, "MAIL") && s->tx)
		lint_add(&t->lint, LINT_MAIL_IN_TX, NULL);
	else if (!strcasecmp(t->verb, "RCPT") && !s->tx)
		lint_add(&t->lint, LINT_RCPT_BEFORE_MAIL, NULL);
	else
		lint_add(&t->lint, LINT_BAD_SEQUENCE, t->verb);
}

void transcript_out(struct session *s, const char *line, size_t n)
{
	struct transcript *t = s->rec;
	snprintf(t->last_out, sizeof t->last_out, "%.*s", (int)n, line);
	if (n >= 3 && !memcmp(line, "503", 3))
		transcript_sequence(s);
	transcript_line(t, SESSIONS_OUT, line, n);
}

void transcript_note(struct session *s, const char *fmt, ...)
{
	char note[512];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(note, sizeof note, fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	transcript_line(s->rec, SESSIONS_NOTE, note, (size_t)k < sizeof note ? (size_t)k :
	                sizeof note - 1);
}

void transcript_bare(struct session *s)
{
	transcript_note(s, "a command line with a bare CR or LF, or a NUL (refused, not shown)");
	lint_add(&s->rec->lint, LINT_BARE_NL_COMMAND, NULL);
}

void transcript_tls(struct session *s)
{
	struct transcript *t = s->rec;
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	char cipher[128], subject[256] = "";
	tls_describe(s->bev, cipher, sizeof cipher);
	const char *sni = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
	X509 *peer = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	if (peer) {
		X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof subject);
		X509_free(peer);
	}
	snprintf(t->tls, sizeof t->tls, "%s %s", tls_version(s->bev), cipher);
	transcript_note(s, "TLS established: protocol %s, cipher %s%s%s%s%s", tls_version(s->bev),
	                cipher, sni ? ", SNI " : "", sni ? sni : "",
	                peer ? ", client certificate " : "", subject);
	struct sessions_meta m = { t->client, t->helo, t->tls, t->user, "", t->dropped };
	sessions_update(t->st, t->id, &m);
}

void transcript_proxy(struct session *s, int version, const char *via)
{
	transcript_note(s, "PROXY v%d header: client [%s] (connected from [%s])", version, s->ip,
	                via);
	transcript_sync(s, NULL);
}

/* ---- the message ---- */

void transcript_data(struct session *s, const char *p, size_t n)
{
	struct transcript *t = s->rec;
	if (!t->scanning)
		lint_scan_init(&t->scan);
	t->scanning = true;
	lint_scan_feed(&t->scan, p, n);
}

/* The DATA parser's findings (data.h), its flags read, not the octets again. */
static void transcript_flags(struct transcript *t, const struct data_parser *dp)
{
	if (dp->flags & DATA_BARE_LF)
		lint_add(&t->lint, LINT_BARE_LF, NULL);
	if (dp->flags & DATA_BARE_CR)
		lint_add(&t->lint, LINT_BARE_CR, NULL);
	if (dp->flags & DATA_NUL)
		lint_add(&t->lint, LINT_NUL, NULL);
	if (dp->flags & DATA_LONG_LINE)
		lint_add(&t->lint, LINT_LINE_TOO_LONG, NULL);
	if (dp->unterminated)
		lint_add(&t->lint, LINT_NO_FINAL_CRLF, NULL);
}

void transcript_data_end(struct session *s)
{
	struct transcript *t = s->rec;
	struct tx *tx = s->tx;
	if (!t->scanning)
		lint_scan_init(&t->scan);
	t->scanning = true;
	uint64_t lines = t->scan.lines + (t->scan.line_len > 0);
	if (tx->bdat)
		transcript_note(s, "message: %llu octets, %llu lines, in %u BDAT chunk%s (%s)",
		                (unsigned long long)t->scan.octets, (unsigned long long)lines,
		                t->nchunks, t->nchunks == 1 ? "" : "s", t->chunks);
	else
		transcript_note(s, "message: %llu octets, %llu lines (after DATA, not recorded)",
		                (unsigned long long)t->scan.octets, (unsigned long long)lines);
	transcript_flags(t, &tx->dp);
	lint_scan_end(&t->scan, tx->mp.body == BODY_8BITMIME || tx->mp.body == BODY_BINARYMIME ||
	              tx->mp.smtputf8, &t->lint);
	lint_head(&tx->in.head, tx->in.stored > 0, tx->mp.smtputf8, &t->lint);
}

static char *transcript_lint_json(const struct lint *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++) {
		const struct lint_info *li = lint_info(l->item[i].code);
		json_t *o = json_pack("{s:s, s:s, s:s}", "code", li->code, "text", li->text, "rfc",
		                      li->rfc);
		if (l->item[i].detail[0] && addr_utf8_valid(l->item[i].detail,
		                                           strlen(l->item[i].detail)))
			json_object_set_new(o, "detail", json_string(l->item[i].detail));
		json_array_append_new(a, o);
	}
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

/* What became of a message that reached its data. */
static void transcript_status(struct session *s, char *out, size_t n)
{
	struct transcript *t = s->rec;
	struct tx *tx = s->tx;
	if (tx->bdat_failed)
		snprintf(out, n, "refused: %s", t->last_out);
	else if (!tx->dp.done)
		snprintf(out, n, "aborted");
	else if (!strncmp(t->last_out, "250", 3))
		snprintf(out, n, "queued");
	else if (s->state == ST_COMMIT && !tx->msg)   /* being committed as it closed */
		snprintf(out, n, "committing when the session ended");
	else
		snprintf(out, n, "refused: %s", t->last_out);
}

void transcript_tx_end(struct session *s)
{
	struct transcript *t = s->rec;
	struct tx *tx = s->tx;
	if (!tx->dp.sink)   /* never reached DATA or BDAT: not a message */
		return;
	char status[200];
	transcript_status(s, status, sizeof status);
	char *lint = transcript_lint_json(&t->lint);
	sessions_message(t->st, t->id, tx->qid, status, t->mail_seq, t->seq ? t->seq - 1 : 0,
	                 lint ? lint : "[]");
	free(lint);
	memset(&t->lint, 0, sizeof t->lint);
	t->scanning = false;
	t->chunks[0] = '\0';
	t->nchunks = 0;
}
