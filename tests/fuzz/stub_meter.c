/* meter/collect.c is reached only from GET /metrics (csi/metrics_http.c),
 * which the request path never calls; it is linked in with csi/server.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "thinvault/meter.h"

int tv_meter_collect(tv_pool *p, const tv_meter_options *opts, tv_meter_report **ret_report, tv_lvm_error *err) {
        if (err)
                snprintf(err->message, sizeof(err->message), "metering is not part of the fuzzed request path");
        return -ENOTSUP;
}

void tv_meter_report_free(tv_meter_report *r) {
        free(r);
}
