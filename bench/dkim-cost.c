/* dkim-cost: what DKIM signing at receipt costs per message, on this
 * machine's CPU: a 4 KiB message (the size of bench scenario 1) streamed
 * through dkim/sign in 1 KiB feeds, then one DKIM-Signature made with an
 * RSA-2048 key, an Ed25519 key, or both (dual signing), and the same
 * message checked by dkim/verify. Keys are made at start; no I/O is
 * timed. Built by meson as build/dkim-cost (not installed):
 *
 *   build/dkim-cost [messages]        (default 2000)
 *
 * Prints microseconds per message for each case. Not part of make bench:
 * bench/README.md notes its figures beside the throughput runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "dkim/key.h"
#include "dkim/sign.h"
#include "dkim/verify.h"
#include "lib/buf.h"

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* A 4 KiB message with the usual header fields. */
static void bench_message(struct buf *m)
{
	buf_puts(m, "From: Kate <kate@example.com>\r\nTo: Bob <bob@example.org>\r\n"
	            "Subject: the benchmark's message\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	            "Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\n"
	            "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	while (m->len < 4096)
		buf_puts(m, "The quick brown fox jumps over the lazy dog, again and again.\r\n");
}

/* Sign msg with the keys (NULL-terminated); the fields into out. */
static void bench_sign(const struct buf *msg, EVP_PKEY *const *keys, struct buf *out)
{
	struct dkim_sign *s = dkim_sign_new();
	for (size_t i = 0; i < msg->len; i += 1024)
		dkim_sign_feed(s, msg->data + i, msg->len - i < 1024 ? msg->len - i : 1024);
	char d[256];
	if (dkim_sign_end(s, d, sizeof d) != DKIM_OK)
		abort();
	for (size_t k = 0; keys[k]; k++)
		if (dkim_sign_field(s, d, k ? "ed" : "rsa", keys[k], 1700000000, out) != DKIM_OK)
			abort();
	dkim_sign_free(s);
}

static void bench_verify(const struct buf *signed_msg, const char *rec)
{
	struct dkim_verify *v = dkim_verify_new();
	dkim_verify_feed(v, signed_msg->data, signed_msg->len);
	dkim_verify_end(v);
	if (dkim_verify_check(v, 0, rec, strlen(rec), 1700000000) != DKIM_OK)
		abort();
	dkim_verify_free(v);
}

static void bench_case(const char *what, const struct buf *msg, EVP_PKEY *const *keys, int n)
{
	struct buf out = BUF_INIT;
	double t0 = bench_now();
	for (int i = 0; i < n; i++) {
		buf_reset(&out);
		bench_sign(msg, keys, &out);
	}
	printf("sign   %-22s %8.1f us/message\n", what, (bench_now() - t0) / n);
	buf_free(&out);
}

static void bench_check(const char *what, const struct buf *msg, EVP_PKEY *key, int n)
{
	EVP_PKEY *keys[] = { key, NULL };
	struct buf signed_msg = BUF_INIT, rec = BUF_INIT;
	bench_sign(msg, keys, &signed_msg);
	buf_append(&signed_msg, msg->data, msg->len);
	if (!dkim_key_record(key, &rec))
		abort();
	double t0 = bench_now();
	for (int i = 0; i < n; i++)
		bench_verify(&signed_msg, rec.data);
	printf("verify %-22s %8.1f us/message\n", what, (bench_now() - t0) / n);
	buf_free(&signed_msg);
	buf_free(&rec);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (n <= 0 || !rsa || !ed)
		return 2;
	struct buf msg = BUF_INIT;
	bench_message(&msg);
	EVP_PKEY *r[] = { rsa, NULL }, *e[] = { ed, NULL }, *both[] = { rsa, ed, NULL };
	bench_case("rsa-sha256 (2048)", &msg, r, n);
	bench_case("ed25519-sha256", &msg, e, n);
	bench_case("both (dual)", &msg, both, n);
	bench_check("rsa-sha256 (2048)", &msg, rsa, n);
	bench_check("ed25519-sha256", &msg, ed, n);
	buf_free(&msg);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	return 0;
}
