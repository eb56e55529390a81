/* deliver: what every transport returns for one recipient (qmail-remote's
 * temp_/perm_ split, with the RFC 3463 enhanced code kept for reports). */
#ifndef TERN_DELIVER_H
#define TERN_DELIVER_H

enum deliver_status { DELIVER_OK, DELIVER_TEMP, DELIVER_PERM };

struct deliver_result {
	enum deliver_status status;
	char reply[512];   /* "2.0.0 delivered to maildir", "4.3.1 disk full", ... */
};

#endif
