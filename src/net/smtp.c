/* smtp: the protocol's shared vocabulary (see smtp.h). */
#include "net/smtp.h"

#include <stdbool.h>
#include <stddef.h>

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* ---- xtext, RFC 3461 4 ---- */

static int hexval(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* xchar = %d33-42 / %d44-60 / %d62-126: printable except "+" and "=". */
static bool is_xchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

/* hexchar = "+" 2HEXDIG. Upper case per the RFC; lower case tolerated. A
 * decoded NUL is refused since the result is a C string. */
bool smtp_xtext_decode(const char *s, size_t len, char *out, size_t n)
{
	size_t o = 0;
	int hi, lo;

	if (out == NULL || n == 0)
		return false;
	out[0] = '\0';
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '+') {
			if (len - i < 3 || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)s[i + 2])) < 0 ||
			    (hi | lo) == 0)
				return false;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (!is_xchar((unsigned char)c)) {
			return false;
		}
		if (o + 1 >= n)
			return false;
		out[o++] = c;
		out[o] = '\0';
	}
	return true;
}

bool smtp_xtext_encode(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (out == NULL || n == 0)
		return false;
	out[0] = '\0';
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		size_t need = is_xchar(c) ? 1 : 3;
		if (o + need >= n) {
			out[0] = '\0';
			return false;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return true;
}
