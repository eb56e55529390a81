/* test_milter: the milter codec (milter/proto.c) as tables: packets
 * tern sends, byte for byte; replies decoded or refused; framing cut at
 * every length; the `milters` configuration value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/conf.h"
#include "milter/proto.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])
#define BYTES(s) s, sizeof s - 1

static void assert_bytes(const struct buf *b, const char *want, size_t n)
{
	assert_int_equal(b->len, n);
	assert_memory_equal(b->data, want, n);
}

static void test_encode(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	milter_put_optneg(&b, 6, MILTER_F_ALL, MILTER_P_OFFER);
	assert_bytes(&b, BYTES("\0\0\0\x0dO\0\0\0\x06\0\0\x01\xff\0\x0f\xf7\xff"));
	buf_reset(&b);
	milter_put_connect(&b, "[192.0.2.1]", '4', 25, "192.0.2.1");
	assert_bytes(&b, BYTES("\0\0\0\x1a" "C[192.0.2.1]\0" "4\0\x19" "192.0.2.1\0"));
	buf_reset(&b);
	milter_put_connect(&b, "x", 'U', 0, NULL);
	assert_bytes(&b, BYTES("\0\0\0\x04" "Cx\0U"));
	buf_reset(&b);
	const char *args[] = { "SIZE=10", "BODY=8BITMIME" };
	milter_put_env(&b, MILTER_C_MAIL, "a@b.example", args, 2);
	assert_bytes(&b, BYTES("\0\0\0\x25" "M<a@b.example>\0SIZE=10\0BODY=8BITMIME\0"));
	buf_reset(&b);
	milter_put_env(&b, MILTER_C_RCPT, "", NULL, 0);
	assert_bytes(&b, BYTES("\0\0\0\x04" "R<>\0"));
	buf_reset(&b);
	milter_put_header(&b, "Subject", "hi");
	assert_bytes(&b, BYTES("\0\0\0\x0c" "LSubject\0hi\0"));
	buf_reset(&b);
	const char *names[] = { "j", "{x}", "i" }, *values[] = { "mx", NULL, "Q1" };
	milter_put_macros(&b, MILTER_C_MAIL, names, values, 3);
	assert_bytes(&b, BYTES("\0\0\0\x0c" "DMj\0mx\0i\0Q1\0"));
	buf_reset(&b);
	milter_put(&b, MILTER_C_EOB, NULL, 0);
	milter_put_string(&b, MILTER_C_HELO, "client.example");
	assert_bytes(&b, BYTES("\0\0\0\x01" "E" "\0\0\0\x10" "Hclient.example\0"));
	buf_free(&b);
}

static void test_frame(void **state)
{
	(void)state;
	static const unsigned char pkt[] = "\0\0\0\x03hA\0rest";
	char cmd;
	const unsigned char *data;
	size_t len, used;
	for (size_t n = 0; n < 7; n++)
		assert_int_equal(milter_frame(pkt, n, &cmd, &data, &len, &used), MILTER_FRAME_MORE);
	assert_int_equal(milter_frame(pkt, 11, &cmd, &data, &len, &used), MILTER_FRAME_OK);
	assert_int_equal(cmd, 'h');
	assert_int_equal(len, 2);
	assert_int_equal(used, 7);
	assert_ptr_equal(data, pkt + 5);
	static const unsigned char zero[] = "\0\0\0\0c", big[] = "\0\x11\0\0c";
	assert_int_equal(milter_frame(zero, 5, &cmd, &data, &len, &used), MILTER_FRAME_BAD);
	assert_int_equal(milter_frame(big, 5, &cmd, &data, &len, &used), MILTER_FRAME_BAD);
}

static void test_decode(void **state)
{
	(void)state;
	static const struct {
		char cmd;
		const char *data;
		size_t len;
		bool ok;
		uint32_t index;
		const char *s1, *s2;
		int code;
	} rows[] = {
		{ 'c', "", 0, true, 0, NULL, NULL, 0 },
		{ 'a', "", 0, true, 0, NULL, NULL, 0 },
		{ 'r', "", 0, true, 0, NULL, NULL, 0 },
		{ 't', "", 0, true, 0, NULL, NULL, 0 },
		{ 'd', "", 0, true, 0, NULL, NULL, 0 },
		{ 'p', "", 0, true, 0, NULL, NULL, 0 },
		{ 's', "", 0, true, 0, NULL, NULL, 0 },
		{ 'y', BYTES("550 5.7.1 go away\0"), true, 0, "550 5.7.1 go away", NULL, 550 },
		{ 'y', BYTES("421 4.3.0 bye\0"), true, 0, "421 4.3.0 bye", NULL, 421 },
		{ 'y', BYTES("550-5.7.1 a\r\n550 5.7.1 b\0"), true, 0, "550-5.7.1 a\r\n550 5.7.1 b", NULL, 550 },
		{ 'y', BYTES("250 ok\0"), false, 0, NULL, NULL, 0 },       /* not a refusal */
		{ 'y', BYTES("55 x\0"), false, 0, NULL, NULL, 0 },
		{ 'y', BYTES("550 no nul"), false, 0, NULL, NULL, 0 },
		{ 'y', BYTES("5x0 bad\0"), false, 0, NULL, NULL, 0 },
		{ 'h', BYTES("X-Spam\0yes\0"), true, 0, "X-Spam", "yes", 0 },
		{ 'h', BYTES("X-Spam\0"), false, 0, NULL, NULL, 0 },      /* value missing */
		{ 'h', BYTES("\0v\0"), false, 0, NULL, NULL, 0 },         /* empty name */
		{ 'i', BYTES("\0\0\0\x02X\0v\0"), true, 2, "X", "v", 0 },
		{ 'm', BYTES("\0\0\0\x01Subject\0\0"), true, 1, "Subject", "", 0 },
		{ 'm', BYTES("\0\0\x01"), false, 0, NULL, NULL, 0 },      /* short index */
		{ '+', BYTES("<x@y>\0"), true, 0, "<x@y>", NULL, 0 },
		{ '2', BYTES("<x@y>\0NOTIFY=NEVER\0"), true, 0, "<x@y>", "NOTIFY=NEVER", 0 },
		{ '-', BYTES("<x@y>\0"), true, 0, "<x@y>", NULL, 0 },
		{ '-', BYTES("\0"), false, 0, NULL, NULL, 0 },
		{ 'e', BYTES("<new@y>\0"), true, 0, "<new@y>", NULL, 0 },
		{ 'q', BYTES("virus\0"), true, 0, "virus", NULL, 0 },
		{ 'q', BYTES("virus"), false, 0, NULL, NULL, 0 },
		{ 'b', BYTES("new body\r\n"), true, 0, NULL, NULL, 0 },
		{ 'O', BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\0"), true, 0, NULL, NULL, 0 },
		{ 'O', BYTES("\0\0\0\x06\0\0\0\x01"), false, 0, NULL, NULL, 0 },
		{ 'l', BYTES("\0\0\0\x02{mail_addr}\0"), true, 0, "{mail_addr}", NULL, 0 },
		{ 'l', BYTES("\0\0\0\x09{x}\0"), false, 0, NULL, NULL, 0 },
		{ 'Z', "", 0, false, 0, NULL, NULL, 0 },
		{ '\0', "", 0, false, 0, NULL, NULL, 0 },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct milter_reply r;
		bool ok = milter_decode(rows[i].cmd, (const unsigned char *)rows[i].data, rows[i].len, &r);
		if (ok != rows[i].ok)
			fail_msg("row %zu (%c): decoded %d, expected %d", i, rows[i].cmd, ok, rows[i].ok);
		if (!ok)
			continue;
		assert_int_equal(r.cmd, rows[i].cmd);
		assert_int_equal(r.index, rows[i].index);
		assert_int_equal(r.code, rows[i].code);
		if (rows[i].s1)
			assert_string_equal(r.s1, rows[i].s1);
		if (rows[i].s2)
			assert_string_equal(r.s2, rows[i].s2);
	}
	struct milter_reply r;
	assert_true(milter_decode('O', (const unsigned char *)"\0\0\0\x06\0\0\0\x21\0\0\x04\x01",
	                          12, &r));
	assert_int_equal(r.version, 6);
	assert_int_equal(r.actions, MILTER_F_ADDHDRS | MILTER_F_QUARANTINE);
	assert_int_equal(r.proto, MILTER_P_SKIP | MILTER_P_NOCONNECT);
	/* SMFIR_SETSYMLIST's lists after OPTNEG's words */
	static const char neg[] = "\0\0\0\x06\0\0\x01\0\0\0\0\0"
	                          "\0\0\0\x02{mail_addr} i\0\0\0\0\x03{rcpt_addr}\0";
	assert_true(milter_decode('O', (const unsigned char *)neg, sizeof neg - 1, &r));
	const unsigned char *p = r.body;
	size_t n = r.body_len;
	uint32_t stage;
	const char *names;
	assert_true(milter_symlist_next(&p, &n, &stage, &names));
	assert_int_equal(stage, MILTER_M_ENVFROM);
	assert_string_equal(names, "{mail_addr} i");
	assert_true(milter_symlist_has(names, "i") && milter_symlist_has(names, "{mail_addr}"));
	assert_true(milter_symlist_has(names, "mail_addr"));
	assert_false(milter_symlist_has(names, "j") || milter_symlist_has(names, "{i}x"));
	assert_true(milter_symlist_next(&p, &n, &stage, &names));
	assert_int_equal(stage, MILTER_M_ENVRCPT);
	assert_int_equal(n, 0);
	assert_false(milter_symlist_next(&p, &n, &stage, &names));
	static const char bad[] = "\0\0\0\x09x\0";   /* stage out of range */
	p = (const unsigned char *)bad;
	n = sizeof bad - 1;
	assert_false(milter_symlist_next(&p, &n, &stage, &names));
	assert_string_equal(milter_reply_name('y'), "reply code");
	assert_string_equal(milter_reply_name('?'), "unknown");
}

static void test_conf(void **state)
{
	(void)state;
	struct conf c;
	conf_defaults(&c);
	struct conf_milter m[CONF_MILTERS_MAX];
	char err[256];
	int n = conf_milters_parse(&c, "inet:127.0.0.1:11332{default_action=accept, "
	                           "command_timeout=5s}, unix:/run/opendkim/opendkim.sock",
	                           m, CONF_MILTERS_MAX, err, sizeof err);
	assert_int_equal(n, 2);
	assert_string_equal(m[0].target, "inet:127.0.0.1:11332");
	assert_int_equal(m[0].default_action, CONF_MILTER_ACCEPT);
	assert_int_equal(m[0].command_timeout, 5);
	assert_int_equal(m[0].connect_timeout, 30);
	assert_int_equal(m[0].content_timeout, 300);
	assert_string_equal(m[1].target, "unix:/run/opendkim/opendkim.sock");
	assert_int_equal(m[1].default_action, CONF_MILTER_TEMPFAIL);
	assert_int_equal(conf_milters_parse(&c, "", m, CONF_MILTERS_MAX, err, sizeof err), 0);
	assert_int_equal(conf_milters_parse(&c, " none ", m, CONF_MILTERS_MAX, err, sizeof err), 0);
	assert_int_equal(conf_milters_parse(&c, "inet:[::1]:99", m, CONF_MILTERS_MAX, err,
	                                    sizeof err), 1);
	static const char *const bad[] = {
		"inet:localhost:1", "inet:127.0.0.1", "tcp:127.0.0.1:1", "unix:relative",
		"inet:127.0.0.1:1{default_action=maybe}", "inet:127.0.0.1:1{nope=1}",
		"inet:127.0.0.1:1{command_timeout=0}", "inet:127.0.0.1:1{", "inet:127.0.0.1:1{} x",
		"unix:/a,unix:/b,unix:/c,unix:/d,unix:/e,unix:/f,unix:/g,unix:/h,unix:/i",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (conf_milters_parse(&c, bad[i], m, CONF_MILTERS_MAX, err, sizeof err) != -1)
			fail_msg("accepted %s", bad[i]);
	assert_int_equal(conf_set(&c, "milter_default_action", "reject", "test"), 0);
	assert_int_equal(c.milter_default_action, CONF_MILTER_REJECT);
	assert_int_equal(conf_milters_parse(&c, "unix:/x", m, CONF_MILTERS_MAX, err, sizeof err), 1);
	assert_int_equal(m[0].default_action, CONF_MILTER_REJECT);
	assert_string_equal(conf_milters_of(&c, CONF_LISTEN_SUBMISSION), "");
	conf_set(&c, "submission_milters", "unix:/sign", "test");
	conf_set(&c, "milters", "unix:/check", "test");
	assert_string_equal(conf_milters_of(&c, CONF_LISTEN_SUBMISSION), "unix:/sign");
	assert_string_equal(conf_milters_of(&c, 0), "unix:/check");
	conf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode), cmocka_unit_test(test_frame),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_conf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
