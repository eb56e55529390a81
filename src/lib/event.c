/* event: typed records and their subscribers (see event.h). */
#include "lib/event.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define EK_SUBS_MAX 8

_Static_assert(EK__COUNT < 64, "a kind is a bit of a uint64_t");

static const char *const ev_names[EK__COUNT] = {
	[EK_NOTE] = "note", [EK_CONNECT] = "connect", [EK_DISCONNECT] = "disconnect",
	[EK_REFUSED] = "refused", [EK_PROXY] = "proxy", [EK_TLS] = "tls", [EK_AUTH] = "auth",
	[EK_REJECT] = "reject", [EK_TIMEOUT] = "timeout", [EK_PROTOCOL] = "protocol",
	[EK_IN] = "in", [EK_OUT] = "out", [EK_RECEIVED] = "received", [EK_QUEUED] = "queued",
	[EK_NOT_QUEUED] = "not queued", [EK_REFUSED_DATA] = "refused at end of data",
	[EK_DELIVERY] = "delivery", [EK_REPORT] = "report", [EK_REMOVED] = "removed",
	[EK_HELD] = "held", [EK_RECORDED] = "recorded", [EK_DKIM] = "dkim",
	[EK_PICKUP] = "pickup", [EK_RELEASE] = "release",
	[EK_DEQUEUE] = "dequeue", [EK_SPF] = "spf",
	[EK_AUTHRES] = "authentication-results", [EK_DMARC] = "dmarc", [EK_DNSBL] = "dnsbl",
	[EK_MILTER] = "milter",
	[EK_FAULT] = "fault",
};

/* The log writer is always there (log.c); the rest subscribe at start-up. */
static struct {
	ev_fn *fn;
	void *ctx;
	atomic_int min;       /* enum log_level; ev_set_min from any thread */
	_Atomic uint64_t kinds;   /* EV_KIND bits; ev_set_kinds from any thread */
} ev_subs[EK_SUBS_MAX] = { { log_event, NULL, LOG_DEBUG, EV_ALL_KINDS } };
static size_t ev_nsubs = 1;

int ev_subscribe(ev_fn *fn, void *ctx, enum log_level min)
{
	if (ev_nsubs == EK_SUBS_MAX)
		return -1;
	ev_subs[ev_nsubs].fn = fn;
	ev_subs[ev_nsubs].ctx = ctx;
	atomic_store(&ev_subs[ev_nsubs].min, (int)min);
	atomic_store(&ev_subs[ev_nsubs].kinds, EV_ALL_KINDS);
	return (int)ev_nsubs++;
}

void ev_set_min(int handle, enum log_level min)
{
	if (handle > 0 && (size_t)handle < ev_nsubs)
		atomic_store(&ev_subs[handle].min, (int)min);
}

void ev_set_kinds(int handle, uint64_t kinds)
{
	if (handle > 0 && (size_t)handle < ev_nsubs)
		atomic_store(&ev_subs[handle].kinds, kinds);
}

/* Does subscriber i take a record of kind k and level l? */
static bool ev_takes(size_t i, enum ev_kind k, enum log_level l)
{
	return (int)l >= atomic_load_explicit(&ev_subs[i].min, memory_order_relaxed) &&
	       (atomic_load_explicit(&ev_subs[i].kinds, memory_order_relaxed) & EV_KIND(k));
}

bool ev_wanted(enum ev_kind k, enum log_level l)
{
	if (log_enabled(l))
		return true;
	for (size_t i = 1; i < ev_nsubs; i++)
		if (ev_takes(i, k, l))
			return true;
	return false;
}

/* src into dst (size n), cut to fit; its length. */
static size_t ev_copy(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
	return len;
}

void ev_init(struct ev *e, enum ev_kind k, enum log_level l, uint64_t session, const char *qid)
{
	e->kind = k;
	e->level = l;
	e->wanted = ev_wanted(k, l);
	e->session = session;
	e->n = 0;
	e->used = 0;
	if (e->wanted)
		ev_copy(e->qid, sizeof e->qid, qid ? qid : "");
}

static struct ev_field *ev_slot(struct ev *e, const char *key)
{
	if (!e->wanted || e->n == EK_FIELDS)
		return NULL;
	struct ev_field *f = &e->f[e->n++];
	f->key = key;
	f->off = (unsigned)e->used;
	f->len = 0;
	f->flag = false;
	return f;
}

void ev_add(struct ev *e, const char *key, const char *fmt, ...)
{
	struct ev_field *f = ev_slot(e, key);
	if (!f)
		return;
	size_t room = sizeof e->text - e->used, len;
	va_list ap;
	va_start(ap, fmt);
	if (fmt[0] == '%' && fmt[1] == 's' && !fmt[2]) {
		/* most fields: a string as it is, without vsnprintf's cost */
		const char *v = va_arg(ap, const char *);
		len = ev_copy(e->text + e->used, room, v ? v : "(null)");
	} else {
		int n = vsnprintf(e->text + e->used, room, fmt, ap);
		len = n < 0 ? 0 : (size_t)n < room ? (size_t)n : room - 1;
	}
	va_end(ap);
	f->len = (unsigned)len;
	e->used += len;
}

void ev_flag(struct ev *e, const char *key)
{
	struct ev_field *f = ev_slot(e, key);
	if (f)
		f->flag = true;
}

void ev_emit(const struct ev *e)
{
	if (!e->wanted)
		return;
	for (size_t i = 0; i < ev_nsubs; i++)
		if (ev_takes(i, e->kind, e->level))
			ev_subs[i].fn(ev_subs[i].ctx, e);
}

void ev_note(enum log_level l, uint64_t session, const char *qid, const char *fmt, ...)
{
	if (!ev_wanted(EK_NOTE, l))
		return;
	struct ev e;
	ev_init(&e, EK_NOTE, l, session, qid);
	struct ev_field *f = ev_slot(&e, "text");
	if (!f)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e.text, sizeof e.text, fmt, ap);
	va_end(ap);
	f->len = n < 0 ? 0 : (size_t)n < sizeof e.text ? (unsigned)n : (unsigned)sizeof e.text - 1;
	e.used = f->len;
	ev_emit(&e);
}

const char *ev_name(enum ev_kind k)
{
	return (unsigned)k < EK__COUNT ? ev_names[k] : "?";
}

const char *ev_get(const struct ev *e, const char *key, size_t *len)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->f[i].key, key)) {
			*len = e->f[i].len;
			return e->text + e->f[i].off;
		}
	return NULL;
}

bool ev_is(const struct ev *e, const char *key, const char *want)
{
	size_t len;
	const char *v = ev_get(e, key, &len);
	return v && len == strlen(want) && !memcmp(v, want, len);
}
