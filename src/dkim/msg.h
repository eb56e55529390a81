/* msg: a message as DKIM sees it, streamed in once (RFC 6376 3.7, 5.4,
 * 6.1.3). The header block is kept (up to DKIM_HEADER_MAX) and split
 * into fields; the body is never kept: each body hash runs its
 * canonicalizer (canon.h) and SHA-256 on the chunks as they come, for its
 * first l= octets when the signature says so. Pure, OpenSSL EVP only.
 *
 * The header block ends at the first empty line (CRLF CRLF); a message
 * without one is all header and an empty body.
 */
#ifndef TERN_DKIM_MSG_H
#define TERN_DKIM_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "dkim/canon.h"
#include "dkim/dkim.h"
#include "lib/buf.h"

/* A header field in the block: its octets with their CRLF, and the length
 * of its name (white space before the colon left out; 0 when the line
 * has no colon, a name that matches nothing). */
struct dkim_field {
	size_t off, len, nlen;
};

/* One body hash: a canonicalization and, with l=, how much of it. */
struct dkim_hash {
	struct dkim_body canon;
	EVP_MD_CTX *md;
	bool limited;
	uint64_t limit;
	uint64_t len;              /* canonical octets in all (to check l=) */
	uint64_t fed;              /* of them hashed */
	unsigned char sum[32];     /* SHA-256, after dkim_msg_end */
};

struct dkim_msg;
typedef void (*dkim_head_fn)(void *ctx, struct dkim_msg *m);

struct dkim_msg {
	struct buf head;           /* the header block, the empty line left out */
	int state;                 /* private: where the header scanner is */
	bool body;                 /* the header block has ended */
	bool too_big;              /* it is over DKIM_HEADER_MAX: nothing is done */
	struct dkim_field *f;
	size_t nf, capf;
	size_t nhash;
	struct dkim_hash hash[DKIM_SIGS_MAX];
	dkim_head_fn on_head;      /* the header block is whole (fields split):
	                              the moment to add body hashes */
	void *ctx;
};

void dkim_msg_init(struct dkim_msg *m, dkim_head_fn on_head, void *ctx);
void dkim_msg_feed(struct dkim_msg *m, const char *p, size_t n);
/* The header block as it finally is (its fields, CRLF-ended, without the
 * empty line), in place of the one that streamed: a receiver that holds
 * the block and edits it streams only the body (after an empty line). */
void dkim_msg_set_head(struct dkim_msg *m, const char *p, size_t n);
/* The message is whole: the body hashes are final. */
void dkim_msg_end(struct dkim_msg *m);
void dkim_msg_free(struct dkim_msg *m);

/* A body hash (canonicalization c; the first limit octets when limited);
 * its index, or -1 when there are DKIM_SIGS_MAX already. Before the body. */
int dkim_msg_add_hash(struct dkim_msg *m, enum dkim_canon c, bool limited, uint64_t limit);

/* Does field k have this name (case-insensitive)? */
bool dkim_msg_is(const struct dkim_msg *m, size_t k, const char *name);
/* How many fields have this name. */
size_t dkim_msg_count(const struct dkim_msg *m, const char *name);

/* RFC 6376 5.4.2: for each name in turn, the last field of that name not
 * yet taken (from the bottom up; none left: nothing), canonicalized with
 * c and appended to out. */
void dkim_msg_select(const struct dkim_msg *m, enum dkim_canon c, const char *const *names,
                     size_t n, struct buf *out);

/* The domain of the RFC 5322.From address (lower-case) into out (room for
 * size octets): DKIM_OK, DKIM_NO_FROM when there is not exactly one From
 * field, DKIM_FROM_SYNTAX when it holds not exactly one mailbox with a
 * domain name. Pure, for the tests too. */
enum dkim_status dkim_msg_from_domain(const struct dkim_msg *m, char *out, size_t size);
enum dkim_status dkim_from_domain(const char *value, size_t n, char *out, size_t size);

#endif
