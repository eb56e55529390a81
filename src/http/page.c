/* page: the web page's files (web/, embedded by scripts/embed-web),
 * served with a Content-Security-Policy that lets the page run only its
 * own script and style and load nothing from elsewhere. A captured HTML
 * message is shown in an iframe the page fills with srcdoc and sandboxes
 * without allow-scripts: an iframe from srcdoc inherits this policy, so
 * its scripts never run and its remote images never load. */
#include "http/http_priv.h"

#include <event2/http.h>
#include <string.h>

#include "http/page_files.h"

#define PAGE_CSP "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';" \
	" img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none';" \
	" form-action 'none'; frame-ancestors 'none'"

bool page_serve(struct http_req *r)
{
	const char *path = !strcmp(r->path, "/api/v1/openapi.json") ? "/openapi.json" : r->path;
	for (unsigned i = 0; i < page_nfiles; i++) {
		if (strcmp(page_files[i].path, path))
			continue;
		struct evkeyvalq *o = evhttp_request_get_output_headers(r->req);
		evhttp_add_header(o, "Content-Security-Policy", PAGE_CSP);
		evhttp_add_header(o, "X-Frame-Options", "DENY");
		http_text(r, 200, page_files[i].type, (const char *)page_files[i].data,
		          page_files[i].len);
		return true;
	}
	return false;
}
