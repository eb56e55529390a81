/* event: every line the daemon logs is an event record first: a kind, a
 * level, the session and the queue id it belongs to (where it has them),
 * and key=value fields. Records are built on the caller's stack and
 * emitted at once, from any thread, to every subscriber: the log writer
 * (log.c) is the first; the control socket's monitor and the test mode's
 * transcripts subscribe the same way. A subscriber copies what it keeps.
 *
 *     struct ev e;
 *     ev_init(&e, EK_QUEUED, LOG_INFO, s->id, tx->qid);
 *     ev_add(&e, "from", "<%s>", tx->sender);
 *     ev_add(&e, "size", "%llu", size);
 *     ev_emit(&e);
 *
 * The log renders it "QID: queued: from=<...>, size=..., session=N": a
 * line about a message starts with its queue id (grep gives its life) and
 * names its session, so a session's lines and its messages' lines join.
 */
#ifndef TERN_EVENT_H
#define TERN_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"

enum ev_kind {
	EK_NOTE,            /* prose: start-up, errors that name no session or message */
	/* a session's (session set) */
	EK_CONNECT, EK_DISCONNECT, EK_REFUSED, EK_PROXY, EK_TLS, EK_AUTH, EK_REJECT,
	EK_TIMEOUT, EK_PROTOCOL, EK_IN, EK_OUT,
	/* a message's (qid set) */
	EK_RECEIVED, EK_QUEUED, EK_NOT_QUEUED, EK_REFUSED_DATA, EK_DELIVERY, EK_REPORT,
	EK_REMOVED, EK_HELD, EK_RECORDED,
	EK_DKIM,            /* signed at receipt, or why not (smtpd/signer.c) */
	/* a maildrop file's (pickup.c): qid set once it has one */
	EK_PICKUP,
	/* held mail released (deliver/release.c; ETRN, ATRN, dequeue_listen) */
	EK_RELEASE,
	/* a connection to dequeue_listen (control/dequeue.c): who, which domains, the end */
	EK_DEQUEUE,
	/* an SPF check's result (policy, RFC 7208) */
	EK_SPF,
	/* the Authentication-Results of a message (RFC 8601), and forged ones removed */
	EK_AUTHRES,
	/* a DMARC evaluation (RFC 7489) and what it did */
	EK_DMARC,
	/* a connecting client listed on a DNSBL or DNSWL */
	EK_DNSBL,
	/* a milter's verdict, or its failure (smtpd/milters.c) */
	EK_MILTER,
	/* a fault rule of the test mode fired (smtpd/faults.c): which, and what it did */
	EK_FAULT,
	EK__COUNT
};

#define EK_FIELDS 16
#define EK_TEXT 1800

struct ev_field {
	const char *key;        /* static */
	unsigned off, len;      /* the value in text; len 0 and no '=' for a flag */
	bool flag;
};

struct ev {
	enum ev_kind kind;
	enum log_level level;
	bool wanted;            /* some subscriber takes this level: else every
	                           call on the record is skipped, nothing formatted */
	uint64_t session;       /* 0: none */
	char qid[24];           /* "": none */
	size_t n;
	struct ev_field f[EK_FIELDS];
	size_t used;
	char text[EK_TEXT];
};

/* Would a record of this kind and level reach any subscriber? (Skip
 * building it; ev_init decides the same.) */
bool ev_wanted(enum ev_kind k, enum log_level l);

void ev_init(struct ev *e, enum ev_kind k, enum log_level l, uint64_t session, const char *qid);
/* A field key=value (value formatted), or a bare flag (ev_flag). Fields
 * beyond EK_FIELDS or EK_TEXT are cut, never overrun. */
void ev_add(struct ev *e, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ev_flag(struct ev *e, const char *key);
void ev_emit(const struct ev *e);
/* A line of prose about a session or a message (EK_NOTE, field "text"). */
void ev_note(enum log_level l, uint64_t session, const char *qid, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The kind's name ("queued"), and a field's value (NULL when absent). */
const char *ev_name(enum ev_kind k);
const char *ev_get(const struct ev *e, const char *key, size_t *len);
/* Has the record the field key with exactly the value want? */
bool ev_is(const struct ev *e, const char *key, const char *want);

typedef void ev_fn(void *ctx, const struct ev *e);
/* Add a subscriber (at start-up, before other threads run): its handle,
 * or -1 when there is no room. fn runs on the thread that emits. */
int ev_subscribe(ev_fn *fn, void *ctx, enum log_level min);
/* Change what a subscriber takes (any thread): a trace that wants the
 * transcript asks for debug records while it runs. */
void ev_set_min(int handle, enum log_level min);
/* Narrow it to some kinds (EV_KIND bits; EV_ALL_KINDS at subscription):
 * a record no subscriber takes is never formatted, so a subscriber that
 * counts a few kinds must say which, or every record is built for it. */
#define EV_KIND(k) (UINT64_C(1) << (k))
#define EV_ALL_KINDS (EV_KIND(EK__COUNT) - 1)
void ev_set_kinds(int handle, uint64_t kinds);

#endif
