/* queue: the normal mode's page data: the queue and the counters, and an
 * administrator's hold, release, flush and delete (control.h does them,
 * as for ternctl). Changing the queue needs a login (http_login): without
 * one the API shows, and refuses to act. */
#include "http/http_priv.h"

#include <string.h>

#include "control/control.h"

#define QUEUE_LIST_MAX 1000

void queue_list(struct http_req *r)
{
	if (!r->h->env.control)
		return http_error(r, 404, "no queue here");
	size_t max = (size_t)http_param_long(r, "limit", 200, QUEUE_LIST_MAX);
	json_t *a = control_queue(r->h->env.control, max ? max : 200);
	http_json(r, 200, json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(a),
	                            "messages", a));
}

void queue_stats(struct http_req *r)
{
	if (!r->h->env.control)
		return http_error(r, 404, "no counters here");
	http_json(r, 200, control_stats(r->h->env.control));
}

static void queue_do(struct http_req *r, const char *verb)
{
	if (!r->h->env.control)
		return http_error(r, 404, "no queue here");
	if (!r->user)
		return http_error(r, 403, "changing the queue needs a login (http_login = yes)");
	const char *why = control_act(r->h->env.control, verb, r->arg[0], r->user);
	if (why)
		return http_error(r, 400, "%s %s: %s", verb, r->arg[0], why);
	http_json(r, 202, json_pack("{s:s, s:s}", "Action", verb, "Target", r->arg[0]));
}

/* POST /api/v1/queue/{QID or domain}/{hold|release|flush} */
void queue_act(struct http_req *r)
{
	static const char *const verbs[] = { "hold", "release", "flush" };
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (!strcmp(r->arg[1], verbs[i]))
			return queue_do(r, verbs[i]);
	http_error(r, 404, "no such action: %s (hold, release, flush)", r->arg[1]);
}

/* DELETE /api/v1/queue/{QID} */
void queue_delete(struct http_req *r)
{
	queue_do(r, "delete");
}
