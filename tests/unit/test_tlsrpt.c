/* TLS-RPT's pure part (net/tlsrpt.c): the _smtp._tls TXT record (RFC
 * 8460 3) and the result types' names (4.3), as tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "net/tlsrpt.h"

static void test_txt(void **state)
{
	(void)state;
	static const struct { const char *rec; size_t n; const char *uri0; bool https0; } t[] = {
		{ "v=TLSRPTv1; rua=mailto:reports@example.com", 1, "reports@example.com", false },
		{ "v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt", 1,
		  "https://reporting.example.com/v1/tlsrpt", true },
		{ "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.net/x", 2, "a@example.com",
		  false },
		{ "v=TLSRPTv1; rua=ftp://x.example, mailto:b@example.com ;", 1, "b@example.com", false },
		{ "v=TLSRPTv1; ext=1; rua=mailto:c@example.com; rua=mailto:d@example.com", 1,
		  "c@example.com", false },
		{ "v=TLSRPTv1; rua=mailto:nobody", 0, NULL, false },
		{ "v=TLSRPTv1; rua=", 0, NULL, false },
		{ "v=TLSRPTv1", 0, NULL, false },
		{ "v=TLSRPTv2; rua=mailto:a@example.com", 0, NULL, false },
		{ "rua=mailto:a@example.com; v=TLSRPTv1", 0, NULL, false },
		{ "v=STSv1; id=1", 0, NULL, false },
		{ "", 0, NULL, false },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct tlsrpt_rua rua;
		bool ok = tlsrpt_txt(t[i].rec, strlen(t[i].rec), &rua);
		if (ok != (t[i].n > 0))
			fail_msg("%s: %s", t[i].rec, ok ? "accepted" : "refused");
		if (!ok)
			continue;
		assert_int_equal(rua.n, t[i].n);
		assert_string_equal(rua.v[0].uri, t[i].uri0);
		assert_int_equal(rua.v[0].https, t[i].https0);
	}
}

static void test_https_split(void **state)
{
	(void)state;
	static const struct { const char *uri, *host; unsigned port; const char *path; } t[] = {
		{ "https://reporting.example.com/v1/tlsrpt", "reporting.example.com", 443, "/v1/tlsrpt" },
		{ "HTTPS://R.Example.COM:8443/x?y=1", "r.example.com", 8443, "/x?y=1" },
		{ "https://r.example.com", "r.example.com", 443, "" },
		{ "https://r.example.com:0/", NULL, 0, NULL },
		{ "https://r.example.com:65536/", NULL, 0, NULL },
		{ "https://r.example.com:x/", NULL, 0, NULL },
		{ "https://user@r.example.com/", NULL, 0, NULL },
		{ "https://[2001:db8::1]/", NULL, 0, NULL },
		{ "https:///x", NULL, 0, NULL },
		{ "http://r.example.com/", NULL, 0, NULL },
		{ "mailto:a@example.com", NULL, 0, NULL },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char host[256];
		unsigned port = 0;
		const char *path = NULL;
		bool ok = tlsrpt_https_split(t[i].uri, host, sizeof host, &port, &path);
		if (ok != (t[i].host != NULL))
			fail_msg("%s: %s", t[i].uri, ok ? "accepted" : "refused");
		if (!ok)
			continue;
		assert_string_equal(host, t[i].host);
		assert_int_equal(port, t[i].port);
		assert_string_equal(path, t[i].path);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(tlsrpt_result_name(TLSRPT_SUCCESS), "success");
	assert_string_equal(tlsrpt_result_name(TLSRPT_STARTTLS_NOT_SUPPORTED), "starttls-not-supported");
	assert_string_equal(tlsrpt_result_name(TLSRPT_CERT_HOST_MISMATCH), "certificate-host-mismatch");
	assert_string_equal(tlsrpt_result_name(TLSRPT_STS_WEBPKI_INVALID), "sts-webpki-invalid");
	assert_string_equal(tlsrpt_policy_name(TLSRPT_POLICY_NONE), "no-policy-found");
	assert_string_equal(tlsrpt_policy_name(TLSRPT_POLICY_STS), "sts");
	assert_string_equal(tlsrpt_policy_name(TLSRPT_POLICY_TLSA), "tlsa");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_https_split),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
