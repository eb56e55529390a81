/* tags: the tag=value list of RFC 6376 3.2, the syntax of both the
 * DKIM-Signature field (3.5) and the key record (3.6.1). Pure.
 *
 *   tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *   tag-name  =  ALPHA *ALNUMPUNC            (letters, digits, "_")
 *   tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
 *   tval      =  1*VALCHAR                   (%x21-3A / %x3C-7E)
 *
 * FWS is folding white space: WSP, or CRLF followed by WSP. Names are
 * case-sensitive; a name given twice makes the whole list invalid. After
 * the last ";" only white space may follow.
 */
#ifndef TERN_DKIM_TAGS_H
#define TERN_DKIM_TAGS_H

#include <stdbool.h>
#include <stddef.h>

#define DKIM_TAGS_MAX 32

struct dkim_tag {
	const char *name;       /* into the input */
	size_t nlen;
	const char *val;        /* the value, without the white space around it */
	size_t vlen;
	size_t raw, raw_end;    /* offsets of what follows "=" up to ";" or the
	                           end: the span RFC 6376 3.7 empties for b= */
};

struct dkim_tags {
	size_t n;
	struct dkim_tag v[DKIM_TAGS_MAX];
};

/* Parse s (n octets, NULs are invalid). false: not a tag-list, or more
 * than DKIM_TAGS_MAX tags. */
bool dkim_tags_parse(const char *s, size_t n, struct dkim_tags *out);

/* The tag named name, or NULL. */
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *t, const char *name);

/* The tag's value into out (room for size octets, NUL-terminated), with
 * every white space octet and CRLF left out (base64, colon lists); false
 * when it does not fit. */
bool dkim_tags_copy(const struct dkim_tag *t, char *out, size_t size);

#endif
