/*
 * service.h: systemd's service notifications (sd_notify(3)) for a
 * Type=notify unit: READY=1 once the program does its steady work,
 * STATUS= lines, STOPPING=1, and the watchdog (WATCHDOG=1 at half of
 * WatchdogSec=, from the main loops).  Outside systemd (no NOTIFY_SOCKET)
 * every call does nothing.  Thread-safe.
 */
#ifndef LS_SERVICE_H
#define LS_SERVICE_H

#include <stdbool.h>

/* READY=1 with a STATUS= line (printf format). */
void service_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A STATUS= line: a short summary for systemctl status. */
void service_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1: a stop signal was received and the program winds down. */
void service_stopping(void);

/*
 * The watchdog: WATCHDOG=1 if half of WATCHDOG_USEC has passed since the
 * last one.  Cheap: call it from every turn of a main loop.
 */
void service_watchdog(void);

/*
 * Long work whose steps block for longer than a watchdog period (a base
 * snapshot's COPY, a CREATE INDEX of post-data): while on, a thread feeds
 * the watchdog, so that only the main loops are guarded.  Off stops it.
 */
void service_busy(bool on);

#endif
