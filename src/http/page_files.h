/* page_files: the web page's files, embedded at build time from web/ by
 * scripts/embed-web (the generated page_files.c). */
#ifndef TERN_PAGE_FILES_H
#define TERN_PAGE_FILES_H

#include <stddef.h>

struct page_file {
	const char *path;          /* "/", "/app.js", ... */
	const char *type;          /* its Content-Type */
	const unsigned char *data;
	size_t len;
};

extern const struct page_file page_files[];
extern const unsigned page_nfiles;

#endif
