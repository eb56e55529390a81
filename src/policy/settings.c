/* settings: a generation of the configuration (see settings.h). */
#include "policy/settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/tls.h"

static int settings_override(struct conf *c, const char *kv)
{
	char key[128], origin[160];
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key) {
		log_problem("-o %s: expected key=value\n", kv);
		return 1;
	}
	snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
	snprintf(origin, sizeof origin, "-o %s", key);
	return conf_set(c, key, eq + 1, origin);
}

/* The certificate and key; after the privilege drop (a reload) they are
 * read as run_user, which must be allowed to. */
static int settings_tls(struct settings *s)
{
	const char *files[] = { s->conf.tls_cert, s->conf.tls_key };
	for (size_t i = 0; i < 2; i++) {
		if (access(files[i], R_OK) != 0) {
			log_problem("%s: cannot read it: %s%s\n", files[i], strerror(errno),
			            geteuid() ? " (a reload reads it as run_user: let it read the file)" : "");
			return 1;
		}
	}
	s->tls = tls_server_ctx(s->conf.tls_cert, s->conf.tls_key);
	return s->tls ? 0 : 1;
}

/* One line of fault_rules (policy/fault.h). */
static int settings_fault_line(void *ctx, char *line, const char *origin)
{
	char err[512];
	if (fault_parse_line(ctx, line, origin, err, sizeof err))
		return 0;
	log_problem("%s\n", err);
	return 1;
}

/* The test mode's fault rules: NULL when the key is empty or the file
 * holds none. */
static struct fault_rules *settings_faults(const char *path, int *bad)
{
	if (!path || !*path)
		return NULL;
	struct fault_rules *r = util_xcalloc(1, sizeof *r);
	fault_rules_init(r);
	*bad += util_each_line(path, "fault rules", 0, settings_fault_line, r);
	if (r->n == 0) {
		free(r);
		return NULL;
	}
	return r;
}

static void settings_free(struct settings *s)
{
	if (s->faults)
		fault_rules_free(s->faults);
	free(s->faults);
	aliases_free(s->aliases);
	auth_users_free(s->users);
	hold_rcpts_free(s->hold_rcpts);
	capture_rules_free(s->capture);
	odmr_map_free(s->odmr);
	signkeys_free(s->dkim_keys);
	tls_ctx_free(s->tls);
	conf_free(&s->conf);
	free(s);
}

struct settings *settings_load(const char *file, char *const *overrides, size_t n,
                               const struct settings *running, int *bad)
{
	static atomic_uint generations;
	struct settings *s = util_xcalloc(1, sizeof *s);
	int problems = 0;
	atomic_init(&s->refs, 1);
	s->generation = atomic_fetch_add(&generations, 1) + 1;
	conf_defaults(&s->conf);
	if (file)
		problems += conf_load_file(&s->conf, file);
	for (size_t i = 0; i < n; i++)   /* -o wins over the file, whatever the order */
		problems += settings_override(&s->conf, overrides[i]);
	problems += conf_finish(&s->conf);   /* every problem at once */
	if (running && !problems)
		conf_keep_restart_keys(&s->conf, &running->conf, s->restart_pending,
		                       sizeof s->restart_pending);
	s->aliases = aliases_load(s->conf.aliases_file, &problems);
	s->users = auth_users_load(s->conf.users_file, &problems);
	s->hold_rcpts = hold_rcpts_load(s->conf.hold_recipients_file, &problems);
	s->odmr = odmr_map_load(s->conf.odmr_map, &problems);
	s->capture = capture_rules_load(s->conf.capture_rules, &problems);
	s->dkim_keys = signkeys_load(s->conf.dkim_keys, &problems);
	s->faults = settings_faults(s->conf.fault_rules, &problems);
	if (!problems && *s->conf.tls_cert)
		problems += settings_tls(s);
	*bad += problems;
	if (problems) {
		settings_free(s);
		return NULL;
	}
	return s;
}

struct settings *settings_ref(struct settings *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void settings_unref(struct settings *s)
{
	if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		settings_free(s);
}
