/* proto: the Sendmail milter protocol, version 6, the MTA's side, pure:
 * packet framing, the commands an MTA sends, the replies a filter sends
 * back, macros. No I/O here (client.h drives one connection).
 *
 * Facts from Sendmail's include/libmilter/mfdef.h (command, reply,
 * action and protocol-step letters and bits) and Postfix's
 * src/milter/milter8.c (what an MTA sends at each stage and what it does
 * with each reply); no code of theirs. A packet is a 4-octet length in
 * network order (of what follows it), one command octet, then the data;
 * strings in the data end with NUL.
 */
#ifndef TERN_MILTER_PROTO_H
#define TERN_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define MILTER_VERSION 6
#define MILTER_CHUNK 65535           /* body octets per SMFIC_BODY (MILTER_CHUNK_SIZE) */
#define MILTER_PACKET_MAX (1u << 20) /* the largest reply accepted (SMFIP_MDS_1M) */

/* Commands, MTA to filter (mfdef.h SMFIC_*). */
enum milter_cmd {
	MILTER_C_ABORT = 'A', MILTER_C_BODY = 'B', MILTER_C_CONNECT = 'C',
	MILTER_C_MACRO = 'D', MILTER_C_EOB = 'E', MILTER_C_HELO = 'H',
	MILTER_C_QUIT_NC = 'K', MILTER_C_HEADER = 'L', MILTER_C_MAIL = 'M',
	MILTER_C_EOH = 'N', MILTER_C_OPTNEG = 'O', MILTER_C_QUIT = 'Q',
	MILTER_C_RCPT = 'R', MILTER_C_DATA = 'T', MILTER_C_UNKNOWN = 'U',
};

/* Replies, filter to MTA (mfdef.h SMFIR_*). */
enum milter_rep {
	MILTER_R_ADDRCPT = '+', MILTER_R_DELRCPT = '-', MILTER_R_ADDRCPT_PAR = '2',
	MILTER_R_SHUTDOWN = '4', MILTER_R_ACCEPT = 'a', MILTER_R_REPLBODY = 'b',
	MILTER_R_CONTINUE = 'c', MILTER_R_DISCARD = 'd', MILTER_R_CHGFROM = 'e',
	MILTER_R_CONN_FAIL = 'f', MILTER_R_ADDHEADER = 'h', MILTER_R_INSHEADER = 'i',
	MILTER_R_SETSYMLIST = 'l', MILTER_R_CHGHEADER = 'm', MILTER_R_PROGRESS = 'p',
	MILTER_R_QUARANTINE = 'q', MILTER_R_REJECT = 'r', MILTER_R_SKIP = 's',
	MILTER_R_TEMPFAIL = 't', MILTER_R_REPLYCODE = 'y', MILTER_R_OPTNEG = 'O',
};

/* Actions a filter may ask for (SMFIF_*), offered in SMFIC_OPTNEG. */
enum {
	MILTER_F_ADDHDRS = 0x01, MILTER_F_CHGBODY = 0x02, MILTER_F_ADDRCPT = 0x04,
	MILTER_F_DELRCPT = 0x08, MILTER_F_CHGHDRS = 0x10, MILTER_F_QUARANTINE = 0x20,
	MILTER_F_CHGFROM = 0x40, MILTER_F_ADDRCPT_PAR = 0x80, MILTER_F_SETSYMLIST = 0x100,
};
/* What tern carries out: all of them. */
#define MILTER_F_ALL 0x1ffu

/* Protocol steps (SMFIP_*): a filter's "do not send" and "no reply". */
enum {
	MILTER_P_NOCONNECT = 0x1, MILTER_P_NOHELO = 0x2, MILTER_P_NOMAIL = 0x4,
	MILTER_P_NORCPT = 0x8, MILTER_P_NOBODY = 0x10, MILTER_P_NOHDRS = 0x20,
	MILTER_P_NOEOH = 0x40, MILTER_P_NR_HDR = 0x80, MILTER_P_NOUNKNOWN = 0x100,
	MILTER_P_NODATA = 0x200, MILTER_P_SKIP = 0x400, MILTER_P_RCPT_REJ = 0x800,
	MILTER_P_NR_CONN = 0x1000, MILTER_P_NR_HELO = 0x2000, MILTER_P_NR_MAIL = 0x4000,
	MILTER_P_NR_RCPT = 0x8000, MILTER_P_NR_DATA = 0x10000, MILTER_P_NR_UNKN = 0x20000,
	MILTER_P_NR_EOH = 0x40000, MILTER_P_NR_BODY = 0x80000, MILTER_P_HDR_LEADSPC = 0x100000,
};
/* The steps tern offers to leave out or not wait for (not RCPT_REJ:
 * rejected recipients are not shown; not HDR_LEADSPC: values go without
 * their leading space, as Sendmail sends them). */
#define MILTER_P_OFFER 0xff7ffu

/* Macro stages of SMFIR_SETSYMLIST (SMFIM_*). */
enum milter_macro_stage {
	MILTER_M_CONNECT, MILTER_M_HELO, MILTER_M_ENVFROM, MILTER_M_ENVRCPT,
	MILTER_M_DATA, MILTER_M_EOM, MILTER_M_EOH, MILTER_M__COUNT
};

/* ---- encoding (appended to out) ---- */

void milter_put(struct buf *out, char cmd, const void *data, size_t n);
void milter_put_optneg(struct buf *out, uint32_t version, uint32_t actions, uint32_t proto);
/* SMFIC_MACRO for the command cmd: name/value pairs, n of them
 * (names as "j" or "{daemon_name}"; a NULL value leaves the pair out). */
void milter_put_macros(struct buf *out, char cmd, const char *const *names,
                       const char *const *values, size_t n);
/* SMFIC_CONNECT: host name, family ('4', '6', 'U' unknown), port, address. */
void milter_put_connect(struct buf *out, const char *host, char family, uint16_t port,
                        const char *addr);
/* SMFIC_MAIL or SMFIC_RCPT: "<addr>" then each ESMTP argument. */
void milter_put_env(struct buf *out, char cmd, const char *addr, const char *const *args,
                    size_t nargs);
/* SMFIC_HEADER: name and value (NUL-ended each). */
void milter_put_header(struct buf *out, const char *name, const char *value);
/* A string argument alone (SMFIC_HELO, SMFIC_UNKNOWN). */
void milter_put_string(struct buf *out, char cmd, const char *s);

/* ---- framing and decoding ---- */

enum milter_frame { MILTER_FRAME_MORE, MILTER_FRAME_OK, MILTER_FRAME_BAD };

/* Is a whole packet at the start of p (n octets)? OK: its command octet,
 * its data and the octets it takes (*used); BAD: a length of 0 or above
 * MILTER_PACKET_MAX. */
enum milter_frame milter_frame(const unsigned char *p, size_t n, char *cmd,
                               const unsigned char **data, size_t *len, size_t *used);

/* A reply decoded: which, and its arguments (pointing into the packet,
 * NUL-ended strings; valid while it is). */
struct milter_reply {
	char cmd;                  /* enum milter_rep */
	uint32_t index;            /* INSHEADER, CHGHEADER: the index (1-based
	                              occurrence for CHGHEADER, position for INS) */
	const char *s1, *s2;       /* ADDHEADER, INSHEADER, CHGHEADER: name, value;
	                              ADDRCPT(_PAR), DELRCPT, CHGFROM: address,
	                              ESMTP arguments or NULL; QUARANTINE: reason;
	                              REPLYCODE: the reply; SETSYMLIST: the names */
	const unsigned char *body; /* REPLBODY; OPTNEG: the macro lists after
	                              the three words (milter_symlist_next) */
	size_t body_len;
	uint32_t version, actions, proto;  /* OPTNEG */
	uint32_t stage;            /* SETSYMLIST: enum milter_macro_stage */
	int code;                  /* REPLYCODE: 400..599 */
};

/* Decode one packet (from milter_frame); false when it is malformed: an
 * unknown command, a string without its NUL, arguments missing, a
 * REPLYCODE that is not "4xx text" or "5xx text", an address that is empty. */
bool milter_decode(char cmd, const unsigned char *data, size_t len, struct milter_reply *r);

/* The next macro list of an OPTNEG reply's tail (p, n: r.body,
 * r.body_len, moved on): its stage and its names, space-separated. false
 * at the end or at a malformed list (a stage out of range, no NUL). */
bool milter_symlist_next(const unsigned char **p, size_t *n, uint32_t *stage,
                         const char **names);

/* Is name (as "i" or "{mail_addr}") in a space-separated list, with or
 * without its braces? */
bool milter_symlist_has(const char *list, const char *name);

/* A reply's name for the log ("continue", "reject", "add header"...). */
const char *milter_reply_name(char cmd);

#endif
