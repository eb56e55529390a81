/* proto: the milter protocol's packets (see proto.h). */
#include "milter/proto.h"

#include <arpa/inet.h>
#include <string.h>

static void milter_put_u32(struct buf *out, uint32_t v)
{
	uint32_t be = htonl(v);
	buf_append(out, &be, 4);
}

static uint32_t milter_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void milter_put_str(struct buf *out, const char *s)
{
	buf_append(out, s, strlen(s) + 1);
}

void milter_put(struct buf *out, char cmd, const void *data, size_t n)
{
	milter_put_u32(out, (uint32_t)n + 1);
	buf_putc(out, cmd);
	if (n)
		buf_append(out, data, n);
}

/* The length is known once the data is written: reserve it, fill it in. */
static size_t milter_open(struct buf *out, char cmd)
{
	size_t at = out->len;
	milter_put_u32(out, 0);
	buf_putc(out, cmd);
	return at;
}

static void milter_close(struct buf *out, size_t at)
{
	uint32_t be = htonl((uint32_t)(out->len - at - 4));
	memcpy(out->data + at, &be, 4);
}

void milter_put_optneg(struct buf *out, uint32_t version, uint32_t actions, uint32_t proto)
{
	size_t at = milter_open(out, 'O');
	milter_put_u32(out, version);
	milter_put_u32(out, actions);
	milter_put_u32(out, proto);
	milter_close(out, at);
}

void milter_put_macros(struct buf *out, char cmd, const char *const *names,
                       const char *const *values, size_t n)
{
	size_t at = milter_open(out, 'D');
	buf_putc(out, cmd);
	for (size_t i = 0; i < n; i++) {
		if (!values[i])
			continue;
		milter_put_str(out, names[i]);
		milter_put_str(out, values[i]);
	}
	milter_close(out, at);
}

void milter_put_connect(struct buf *out, const char *host, char family, uint16_t port,
                        const char *addr)
{
	size_t at = milter_open(out, 'C');
	milter_put_str(out, host);
	buf_putc(out, family);
	if (family != 'U') {
		uint16_t be = htons(port);
		buf_append(out, &be, 2);
		milter_put_str(out, addr);
	}
	milter_close(out, at);
}

void milter_put_env(struct buf *out, char cmd, const char *addr, const char *const *args,
                    size_t nargs)
{
	size_t at = milter_open(out, cmd);
	buf_putc(out, '<');
	buf_puts(out, addr);
	buf_puts(out, ">");
	buf_putc(out, '\0');
	for (size_t i = 0; i < nargs; i++)
		milter_put_str(out, args[i]);
	milter_close(out, at);
}

void milter_put_header(struct buf *out, const char *name, const char *value)
{
	size_t at = milter_open(out, 'L');
	milter_put_str(out, name);
	milter_put_str(out, value);
	milter_close(out, at);
}

void milter_put_string(struct buf *out, char cmd, const char *s)
{
	size_t at = milter_open(out, cmd);
	milter_put_str(out, s);
	milter_close(out, at);
}

enum milter_frame milter_frame(const unsigned char *p, size_t n, char *cmd,
                               const unsigned char **data, size_t *len, size_t *used)
{
	if (n < 4)
		return MILTER_FRAME_MORE;
	uint32_t l = milter_get_u32(p);
	if (l == 0 || l > MILTER_PACKET_MAX)
		return MILTER_FRAME_BAD;
	if (n - 4 < l)
		return MILTER_FRAME_MORE;
	*cmd = (char)p[4];
	*data = p + 5;
	*len = l - 1;
	*used = 4 + (size_t)l;
	return MILTER_FRAME_OK;
}

/* The next NUL-ended string of data from *at; NULL when there is none. */
static const char *milter_str(const unsigned char *data, size_t len, size_t *at)
{
	if (*at >= len)
		return NULL;
	const unsigned char *nul = memchr(data + *at, '\0', len - *at);
	if (!nul)
		return NULL;
	const char *s = (const char *)data + *at;
	*at = (size_t)(nul - data) + 1;
	return s;
}

/* "4xx text" or "5xx text", or the same as a multi-line reply ("4xx-"):
 * what SMFIR_REPLYCODE may carry (libmilter's smfi_setreply). */
static bool milter_replycode(const char *s, int *code)
{
	if (strlen(s) < 4 || (s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9' || (s[3] != ' ' && s[3] != '-'))
		return false;
	*code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	return true;
}

/* An index, then name and value: INSHEADER, CHGHEADER. */
static bool milter_decode_indexed(const unsigned char *data, size_t len, struct milter_reply *r)
{
	size_t at = 4;
	if (len < 4)
		return false;
	r->index = milter_get_u32(data);
	r->s1 = milter_str(data, len, &at);
	r->s2 = milter_str(data, len, &at);
	return r->s1 && r->s2 && *r->s1;
}

/* One or two strings: an address and its arguments, a header. */
static bool milter_decode_strings(const unsigned char *data, size_t len, struct milter_reply *r,
                                  bool two)
{
	size_t at = 0;
	r->s1 = milter_str(data, len, &at);
	r->s2 = milter_str(data, len, &at);
	return r->s1 && *r->s1 && (!two || r->s2);
}

static bool milter_decode_optneg(const unsigned char *data, size_t len, struct milter_reply *r)
{
	if (len < 12)
		return false;
	r->version = milter_get_u32(data);
	r->actions = milter_get_u32(data + 4);
	r->proto = milter_get_u32(data + 8);
	r->body = data + 12;   /* SMFIR_SETSYMLIST's lists, if any */
	r->body_len = len - 12;
	return true;
}

static bool milter_decode_symlist(const unsigned char *data, size_t len, struct milter_reply *r)
{
	size_t at = 4;
	if (len < 4)
		return false;
	r->stage = milter_get_u32(data);
	r->s1 = milter_str(data, len, &at);
	return r->s1 && r->stage < MILTER_M__COUNT;
}

bool milter_decode(char cmd, const unsigned char *data, size_t len, struct milter_reply *r)
{
	size_t at = 0;
	memset(r, 0, sizeof *r);
	r->cmd = cmd;
	switch (cmd) {
	case MILTER_R_ACCEPT: case MILTER_R_CONTINUE: case MILTER_R_DISCARD:
	case MILTER_R_REJECT: case MILTER_R_TEMPFAIL: case MILTER_R_SKIP:
	case MILTER_R_PROGRESS: case MILTER_R_SHUTDOWN: case MILTER_R_CONN_FAIL:
		return true;
	case MILTER_R_REPLBODY:
		r->body = data;
		r->body_len = len;
		return true;
	case MILTER_R_REPLYCODE:
		r->s1 = milter_str(data, len, &at);
		return r->s1 && milter_replycode(r->s1, &r->code);
	case MILTER_R_QUARANTINE:
		r->s1 = milter_str(data, len, &at);
		return r->s1 != NULL;
	case MILTER_R_ADDHEADER:
		return milter_decode_strings(data, len, r, true);
	case MILTER_R_ADDRCPT: case MILTER_R_DELRCPT: case MILTER_R_CHGFROM:
	case MILTER_R_ADDRCPT_PAR:
		return milter_decode_strings(data, len, r, false);
	case MILTER_R_INSHEADER: case MILTER_R_CHGHEADER:
		return milter_decode_indexed(data, len, r);
	case MILTER_R_OPTNEG:
		return milter_decode_optneg(data, len, r);
	case MILTER_R_SETSYMLIST:
		return milter_decode_symlist(data, len, r);
	}
	return false;
}

bool milter_symlist_next(const unsigned char **p, size_t *n, uint32_t *stage,
                         const char **names)
{
	size_t at = 4;
	if (*n < 4)
		return false;
	*stage = milter_get_u32(*p);
	*names = milter_str(*p, *n, &at);
	if (!*names || *stage >= MILTER_M__COUNT)
		return false;
	*p += at;
	*n -= at;
	return true;
}

bool milter_symlist_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	if (n > 2 && name[0] == '{' && name[n - 1] == '}') {
		name++;
		n -= 2;
	}
	for (const char *t = list; *t;) {
		t += strspn(t, " ,");
		size_t l = strcspn(t, " ,");
		const char *w = t;
		size_t wl = l;
		if (wl > 2 && w[0] == '{' && w[wl - 1] == '}') {
			w++;
			wl -= 2;
		}
		if (wl && wl == n && !strncmp(w, name, n))
			return true;
		t += l;
	}
	return false;
}

const char *milter_reply_name(char cmd)
{
	switch (cmd) {
	case MILTER_R_ACCEPT: return "accept";
	case MILTER_R_CONTINUE: return "continue";
	case MILTER_R_DISCARD: return "discard";
	case MILTER_R_REJECT: return "reject";
	case MILTER_R_TEMPFAIL: return "tempfail";
	case MILTER_R_SKIP: return "skip";
	case MILTER_R_PROGRESS: return "progress";
	case MILTER_R_SHUTDOWN: return "shutdown";
	case MILTER_R_CONN_FAIL: return "connection failure";
	case MILTER_R_REPLBODY: return "replace body";
	case MILTER_R_REPLYCODE: return "reply code";
	case MILTER_R_QUARANTINE: return "quarantine";
	case MILTER_R_ADDHEADER: return "add header";
	case MILTER_R_INSHEADER: return "insert header";
	case MILTER_R_CHGHEADER: return "change header";
	case MILTER_R_ADDRCPT: return "add recipient";
	case MILTER_R_ADDRCPT_PAR: return "add recipient with parameters";
	case MILTER_R_DELRCPT: return "delete recipient";
	case MILTER_R_CHGFROM: return "change sender";
	case MILTER_R_OPTNEG: return "option negotiation";
	case MILTER_R_SETSYMLIST: return "set macro list";
	}
	return "unknown";
}
