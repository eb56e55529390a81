/* mime: the test mode's views of a captured message, parsed with GMime 3
 * (MIME, RFC 2045-2049; encoded words, RFC 2047; parameters, RFC 2231):
 * Mailpit's message object, the MIME tree, the header fields, one part's
 * decoded content, and the text a search finds it by. Parts are named by
 * their place in the tree ("1", "2.1"), as Mailpit and IMAP (RFC 3501
 * 6.4.5) do. A message of many parts is walked up to MIME_PARTS_MAX. */
#include "http/http_priv.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "spool/spool.h"

#define MIME_PARTS_MAX 2000
#define MIME_DEPTH_MAX 32

void mime_init(void)
{
	g_mime_init();
}

void mime_shutdown(void)
{
	g_mime_shutdown();
}

/* ---- the message: its prefix in memory, its body in memory or in its file ---- */

struct mime_sink {
	struct buf *out;
};

static bool mime_take(void *ctx, const void *p, size_t n)
{
	struct mime_sink *s = ctx;
	buf_append(s->out, p, n);
	return true;
}

int mime_open(struct http *h, const char *qid, bool whole, struct mime_src *src)
{
	memset(src, 0, sizeof *src);
	src->fd = -1;
	struct spool_env env;
	int err = spool_reader_env(h->reader, qid, &env);
	if (err)
		return err;
	if (env.prefix)
		buf_append(&src->mem, env.prefix, strlen(env.prefix));
	if (env.body_file && !whole) {   /* a large body stays in its file: never read whole */
		src->fd = spool_reader_body_fd(h->reader, &env, &src->fsize);
		err = src->fd < 0 ? EIO : 0;
	} else {
		struct mime_sink s = { &src->mem };
		err = spool_reader_body(h->reader, &env, mime_take, &s);
	}
	spool_env_free(&env);
	if (err)
		mime_close(src);
	return err;
}

void mime_close(struct mime_src *src)
{
	buf_free(&src->mem);
	if (src->fd >= 0)
		close(src->fd);
	src->fd = -1;
}

uint64_t mime_size(const struct mime_src *src)
{
	return src->mem.len + src->fsize;
}

/* The whole message as one seekable GMime stream (a new reference). */
static GMimeStream *mime_stream(const struct mime_src *src)
{
	GMimeStream *mem = g_mime_stream_mem_new_with_buffer(src->mem.data ? src->mem.data : "",
	                                                     src->mem.len);
	if (src->fd < 0)
		return mem;
	int fd = dup(src->fd);
	if (fd < 0)
		return mem;
	GMimeStream *cat = g_mime_stream_cat_new();
	g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), mem);
	GMimeStream *fs = g_mime_stream_fs_new_with_bounds(fd, 0, (gint64)src->fsize);
	g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), fs);
	g_object_unref(mem);
	g_object_unref(fs);
	return cat;
}

static GMimeMessage *mime_parse(const struct mime_src *src)
{
	GMimeStream *st = mime_stream(src);
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	g_mime_parser_set_persist_stream(p, TRUE);   /* parts refer to the stream, not copies */
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	g_object_unref(st);
	return m;
}

/* ---- addresses and header values ---- */

char *mime_decode(const char *value)
{
	char *d = g_mime_utils_header_decode_text(NULL, value ? value : "");
	char *out = util_xstrdup(d ? d : "");
	g_free(d);
	return out;
}

static void mime_address_add(json_t *a, InternetAddress *ia, int depth)
{
	if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
		const char *name = internet_address_get_name(ia);
		const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
		json_array_append_new(a, json_pack("{s:s, s:s}", "Name", name ? name : "", "Address",
		                                   addr ? addr : ""));
	} else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth < 4) {
		InternetAddressList *m = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
		for (int i = 0; m && i < internet_address_list_length(m); i++)
			mime_address_add(a, internet_address_list_get_address(m, i), depth + 1);
	}
}

static json_t *mime_list_json(InternetAddressList *l)
{
	json_t *a = json_array();
	for (int i = 0; l && i < internet_address_list_length(l) && i < 1000; i++)
		mime_address_add(a, internet_address_list_get_address(l, i), 0);
	return a;
}

json_t *mime_addresses(const char *value)
{
	InternetAddressList *l = internet_address_list_parse(NULL, value ? value : "");
	json_t *a = mime_list_json(l);
	if (l)
		g_object_unref(l);
	return a;
}

/* ---- walking the tree ---- */

struct mime_walk {
	int parts;
	bool cut;                      /* MIME_PARTS_MAX reached */
	void (*leaf)(struct mime_walk *w, GMimeObject *o, const char *id);
	void (*node)(struct mime_walk *w, GMimeObject *o, const char *id, int depth);
	void *ctx;
};

static void mime_walk(struct mime_walk *w, GMimeObject *o, const char *id, int depth)
{
	if (!o || depth > MIME_DEPTH_MAX || w->cut)
		return;
	if (++w->parts > MIME_PARTS_MAX) {
		w->cut = true;
		return;
	}
	if (w->node)
		w->node(w, o, id, depth);
	char sub[256];
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		for (int i = 0; i < g_mime_multipart_get_count(mp) && !w->cut; i++) {
			snprintf(sub, sizeof sub, "%s%s%d", id, *id ? "." : "", i + 1);
			mime_walk(w, g_mime_multipart_get_part(mp, i), sub, depth + 1);
		}
	} else if ((GMIME_IS_PART(o) || GMIME_IS_MESSAGE_PART(o)) && w->leaf) {
		/* an attached message (message/rfc822) is one leaf: its parts are its own */
		w->leaf(w, o, *id ? id : "1");
	}
}

static char *mime_type_of(GMimeObject *o)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	char *t = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
	char *out = util_xstrdup(t ? t : "application/octet-stream");
	g_free(t);
	return out;
}

/* The decoded content of a leaf (a part's transfer encoding undone; a
 * message/rfc822 part as it is) written to st. */
static void mime_write(GMimeObject *o, GMimeStream *st)
{
	if (GMIME_IS_PART(o)) {
		GMimeDataWrapper *dw = g_mime_part_get_content(GMIME_PART(o));
		if (dw)
			g_mime_data_wrapper_write_to_stream(dw, st);
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
		if (m)
			g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, st);
	}
}

static void mime_content(GMimeObject *o, struct buf *out)
{
	GMimeStream *mem = g_mime_stream_mem_new();
	mime_write(o, mem);
	GByteArray *a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	if (a && a->len)
		buf_append(out, (const char *)a->data, a->len);
	g_object_unref(mem);
}

/* The decoded size of a leaf, counted, never held. */
static size_t mime_decoded_size(GMimeObject *o)
{
	GMimeStream *null = g_mime_stream_null_new();
	mime_write(o, null);
	size_t n = (size_t)GMIME_STREAM_NULL(null)->written;
	g_object_unref(null);
	return n;
}

static bool mime_is_attachment(GMimeObject *o)
{
	GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);
	if (d && g_mime_content_disposition_is_attachment(d))
		return true;
	if (GMIME_IS_MESSAGE_PART(o))
		return true;
	return GMIME_IS_PART(o) && g_mime_part_get_filename(GMIME_PART(o)) &&
	       !GMIME_IS_TEXT_PART(o);
}

/* ---- Mailpit's message object ---- */

struct mime_msg {
	json_t *o, *att, *inl;
	struct buf text, html;
	bool has_text, has_html;
};

static json_t *mime_attachment(GMimeObject *o, const char *id)
{
	char *type = mime_type_of(o);
	const char *name = GMIME_IS_PART(o) ? g_mime_part_get_filename(GMIME_PART(o)) : NULL;
	const char *cid = GMIME_IS_PART(o) ? g_mime_part_get_content_id(GMIME_PART(o)) : NULL;
	json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:I}", "PartID", id, "FileName",
	                      name ? name : "", "ContentType", type, "ContentID", cid ? cid : "",
	                      "Size", (json_int_t)mime_decoded_size(o));
	free(type);
	return a;
}

static void mime_msg_leaf(struct mime_walk *w, GMimeObject *o, const char *id)
{
	struct mime_msg *m = w->ctx;
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	bool attachment = mime_is_attachment(o);
	if (!attachment && GMIME_IS_TEXT_PART(o) && ct &&
	    (g_mime_content_type_is_type(ct, "text", "plain") ||
	     g_mime_content_type_is_type(ct, "text", "html"))) {
		bool html = g_mime_content_type_is_type(ct, "text", "html");
		if (html ? m->has_html : m->has_text)
			goto other;   /* the first of each is the message's */
		char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
		buf_append(html ? &m->html : &m->text, t ? t : "", t ? strlen(t) : 0);
		g_free(t);
		*(html ? &m->has_html : &m->has_text) = true;
		return;
	}
other:
	if (GMIME_IS_PART(o) && g_mime_part_get_content_id(GMIME_PART(o)) && !attachment)
		json_array_append_new(m->inl, mime_attachment(o, id));
	else
		json_array_append_new(m->att, mime_attachment(o, id));
}

static json_t *mime_one(InternetAddressList *l)
{
	json_t *a = mime_list_json(l);
	json_t *first = json_array_size(a) ? json_incref(json_array_get(a, 0)) : json_null();
	json_decref(a);
	return first;
}

json_t *mime_message(const struct mime_src *src)
{
	GMimeMessage *msg = mime_parse(src);
	if (!msg)
		return NULL;
	struct mime_msg m = { .att = json_array(), .inl = json_array(), .text = BUF_INIT,
	                      .html = BUF_INIT };
	struct mime_walk w = { .leaf = mime_msg_leaf, .ctx = &m };
	mime_walk(&w, g_mime_message_get_mime_part(msg), "", 0);
	const char *subject = g_mime_message_get_subject(msg);
	const char *mid = g_mime_message_get_message_id(msg);
	GDateTime *date = g_mime_message_get_date(msg);
	gchar *iso = date ? g_date_time_format_iso8601(date) : NULL;
	const char *rp = g_mime_object_get_header(GMIME_OBJECT(msg), "Return-Path");
	json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:s, s:[], s:s, s:s%, s:s%, "
	                      "s:I, s:o, s:o, s:b}",
	                      "MessageID", mid ? mid : "",
	                      "From", mime_one(g_mime_message_get_from(msg)),
	                      "To", mime_list_json(g_mime_message_get_to(msg)),
	                      "Cc", mime_list_json(g_mime_message_get_cc(msg)),
	                      "Bcc", mime_list_json(g_mime_message_get_bcc(msg)),
	                      "ReplyTo", mime_list_json(g_mime_message_get_reply_to(msg)),
	                      "ReturnPath", rp ? rp : "",
	                      "Subject", subject ? subject : "",
	                      "Date", iso ? iso : "",
	                      "Tags",
	                      "Username", "",
	                      "Text", m.text.data ? m.text.data : "", m.text.len,
	                      "HTML", m.html.data ? m.html.data : "", m.html.len,
	                      "Size", (json_int_t)mime_size(src),
	                      "Inline", m.inl,
	                      "Attachments", m.att,
	                      "PartsTruncated", w.cut);
	g_free(iso);
	buf_free(&m.text);
	buf_free(&m.html);
	g_object_unref(msg);
	return o;
}

/* ---- the tree, headers, one part, the searchable text ---- */

static void mime_tree_node(struct mime_walk *w, GMimeObject *o, const char *id, int depth)
{
	char *type = mime_type_of(o);
	const char *name = GMIME_IS_PART(o) ? g_mime_part_get_filename(GMIME_PART(o)) : NULL;
	size_t n = GMIME_IS_PART(o) || GMIME_IS_MESSAGE_PART(o) ? mime_decoded_size(o) : 0;
	json_array_append_new(w->ctx, json_pack("{s:s, s:i, s:s, s:s, s:I, s:b}", "PartID",
	                                        *id ? id : "0", "Depth", depth, "ContentType", type,
	                                        "FileName", name ? name : "", "Size",
	                                        (json_int_t)n, "Attachment",
	                                        mime_is_attachment(o)));
	free(type);
}

json_t *mime_tree(const struct mime_src *src)
{
	GMimeMessage *msg = mime_parse(src);
	if (!msg)
		return NULL;
	json_t *a = json_array();
	struct mime_walk w = { .node = mime_tree_node, .ctx = a };
	mime_walk(&w, g_mime_message_get_mime_part(msg), "", 0);
	g_object_unref(msg);
	return json_pack("{s:o, s:b}", "Parts", a, "Truncated", w.cut);
}

json_t *mime_headers(const struct mime_src *src)
{
	GMimeMessage *msg = mime_parse(src);
	if (!msg)
		return NULL;
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	json_t *o = json_object();
	for (int i = 0; hl && i < g_mime_header_list_get_count(hl); i++) {
		GMimeHeader *hd = g_mime_header_list_get_header_at(hl, i);
		const char *name = g_mime_header_get_name(hd);
		const char *v = g_mime_header_get_value(hd);   /* unfolded, decoded */
		json_t *a = json_object_get(o, name);
		if (!a)
			json_object_set_new(o, name, a = json_array());
		json_array_append_new(a, json_string(v ? v : ""));
	}
	g_object_unref(msg);
	return o;
}

struct mime_find {
	const char *id;
	GMimeObject *found;
};

static void mime_find_leaf(struct mime_walk *w, GMimeObject *o, const char *id)
{
	struct mime_find *f = w->ctx;
	if (!f->found && !strcmp(id, f->id))
		f->found = o;
}

bool mime_part(const struct mime_src *src, const char *part_id, struct buf *out, char *type,
               size_t tn, char *name, size_t nn)
{
	GMimeMessage *msg = mime_parse(src);
	if (!msg)
		return false;
	struct mime_find f = { .id = part_id };
	struct mime_walk w = { .leaf = mime_find_leaf, .ctx = &f };
	mime_walk(&w, g_mime_message_get_mime_part(msg), "", 0);
	if (f.found) {
		char *t = mime_type_of(f.found);
		snprintf(type, tn, "%s", t);
		free(t);
		const char *fn = GMIME_IS_PART(f.found) ? g_mime_part_get_filename(GMIME_PART(f.found))
		                                        : NULL;
		snprintf(name, nn, "%s", fn ? fn : "");
		mime_content(f.found, out);
	}
	g_object_unref(msg);
	return f.found != NULL;
}

struct mime_text_ctx {
	struct buf *out;
	size_t max;
	int attachments;
};

static void mime_text_leaf(struct mime_walk *w, GMimeObject *o, const char *id)
{
	(void)id;
	struct mime_text_ctx *t = w->ctx;
	if (mime_is_attachment(o)) {
		t->attachments++;
		return;
	}
	if (!GMIME_IS_TEXT_PART(o) || t->out->len >= t->max)
		return;
	char *s = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
	size_t n = s ? strlen(s) : 0;
	if (n > t->max - t->out->len)
		n = t->max - t->out->len;
	buf_append(t->out, s ? s : "", n);
	buf_append(t->out, "\n", 1);
	g_free(s);
}

int mime_text(const struct mime_src *src, struct buf *out, size_t max)
{
	GMimeMessage *msg = mime_parse(src);
	if (!msg)
		return 0;
	struct mime_text_ctx t = { out, max, 0 };
	struct mime_walk w = { .leaf = mime_text_leaf, .ctx = &t };
	mime_walk(&w, g_mime_message_get_mime_part(msg), "", 0);
	g_object_unref(msg);
	return t.attachments;
}
