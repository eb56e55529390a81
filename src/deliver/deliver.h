/* deliver: what every transport returns for one recipient. The type,
 * struct deliver_result, is the protocol's (net/smtp.h): the client engine
 * fills it in below this layer, maildir delivery here. */
#ifndef TERN_DELIVER_H
#define TERN_DELIVER_H

#include "net/smtp.h"

#endif
