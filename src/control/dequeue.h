/* dequeue: the dequeue trigger on dequeue_listen (the seeds' "telnet
 * autoturn.plus.net 79"). A customer's server connects; the held domains
 * (hold_domains) whose transport_map host is the client's own address
 * are released to it, and the connection tells what happens, one line at
 * a time, then is closed by tern:
 *
 *     dequeuing 2 messages
 *     delivered 0123456789ABCDEF to u1@held.test
 *     deferred 0123456789ABCDF0 to u2@held.test: 451 4.3.0 try later
 *     done: 1 delivered, 1 deferred, 0 failed (the deferred wait for the next dequeue)
 *
 * or one line saying why nothing goes ("no messages waiting for
 * held.test", "no mail is held here for [192.0.2.7]: ..."). The client
 * sends nothing; what it sends is read and thrown away. Served by the
 * main loop, owned by control/ (control.c opens and closes it).
 */
#ifndef TERN_DEQUEUE_H
#define TERN_DEQUEUE_H

struct control;
struct dequeue;

/* As root, before the privilege drop: listen on listen ("host:port").
 * NULL, with why logged, on failure. Clients are taken once the loop runs
 * (after control_start). */
struct dequeue *dequeue_open(struct control *c, const char *listen);

/* Shutdown (the loop has ended, its closer still there): every client is
 * told and closed, the socket too. A client the engine still owes news is
 * freed when the news comes (the post's last calls, post_free). */
void dequeue_free(struct dequeue *d);

#endif
