/* mailbox: where a local mailbox lives (see mailbox.h). */
#include "lib/mailbox.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/idna.h"
#include "lib/util.h"

bool mailbox_path(const char *mail_dir, const char *local, const char *domain,
                  char *out, size_t n)
{
	/* Only plain dot-atoms name a directory: no '/', no leading dot (the
	 * parser already refuses "..") and no quoted local parts. */
	if (!*local || local[0] == '.' || strpbrk(local, "/\"\\") || !*domain ||
	    domain[0] == '.' || domain[0] == '[' || strchr(domain, '/'))
		return false;
	/* An internationalized domain's directory is its A-label; a UTF-8
	 * local part names its directory as it is (octets, ASCII lower-cased). */
	char a[256];
	if (!idna_alabel(domain, a, sizeof a))
		return false;
	int w = snprintf(out, n, "%s/%s/%s", mail_dir, a, local);
	if (w < 0 || (size_t)w >= n)
		return false;
	util_lower(out + strlen(mail_dir));
	return true;
}

/* Called for every copy delivered: a stat of each existing subdirectory,
 * not util_mkdir_p's mkdir of every component of the path (27 failing
 * mkdirs a copy, a third of a copy's time on a loaded machine). */
bool mailbox_create(const char *dir)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	char p[4096];
	struct stat st;
	for (int i = 0; i < 3; i++) {
		int w = snprintf(p, sizeof p, "%s/%s", dir, sub[i]);
		if (w < 0 || (size_t)w >= sizeof p)
			return false;
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		if (!util_mkdir_p(p, 0700))
			return false;
	}
	return true;
}
