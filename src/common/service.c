/* service.c: systemd notifications (see service.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "common/service.h"
#include "common/util.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int checked;		/* 0: not yet, 1: notify, -1: not under systemd */
static uint64_t half_us;	/* half of WATCHDOG_USEC, 0: no watchdog */
static uint64_t last_us;	/* last WATCHDOG=1 */
static bool busy, busy_thread;
static pthread_t busy_tid;

/* Under systemd?  Reads the environment once (lock held). */
static bool
enabled(void)
{
	uint64_t usec = 0;

	if (checked == 0) {
		checked = getenv("NOTIFY_SOCKET") != NULL ? 1 : -1;
		if (checked == 1 && sd_watchdog_enabled(0, &usec) > 0)
			half_us = usec / 2;
	}
	return checked == 1;
}

static void
notify(const char *state, const char *fmt, va_list ap)
{
	char status[256];

	vsnprintf(status, sizeof(status), fmt, ap);
	pthread_mutex_lock(&lock);
	if (enabled())
		sd_notifyf(0, "%sSTATUS=%s", state, status);
	pthread_mutex_unlock(&lock);
}

void
service_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify("READY=1\n", fmt, ap);
	va_end(ap);
}

void
service_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify("", fmt, ap);
	va_end(ap);
}

void
service_stopping(void)
{
	pthread_mutex_lock(&lock);
	if (enabled())
		sd_notify(0, "STOPPING=1");
	pthread_mutex_unlock(&lock);
}

/* WATCHDOG=1 if it is time (lock held). */
static void
feed(void)
{
	uint64_t now;

	if (!enabled() || half_us == 0)
		return;
	now = (uint64_t)ls_mono_us();
	if (last_us != 0 && now - last_us < half_us)
		return;
	last_us = now;
	sd_notify(0, "WATCHDOG=1");
}

void
service_watchdog(void)
{
	pthread_mutex_lock(&lock);
	feed();
	pthread_mutex_unlock(&lock);
}

static void *
busy_main(void *arg)
{
	struct timespec ts;
	uint64_t at;

	(void)arg;
	pthread_mutex_lock(&lock);
	while (busy) {
		feed();
		clock_gettime(CLOCK_REALTIME, &ts);
		at = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 +
		    half_us / 2;
		ts.tv_sec = (time_t)(at / 1000000);
		ts.tv_nsec = (long)(at % 1000000) * 1000;
		pthread_cond_timedwait(&wake, &lock, &ts);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

void
service_busy(bool on)
{
	bool join = false;

	pthread_mutex_lock(&lock);
	if (on && !busy && enabled() && half_us > 0 && !busy_thread) {
		busy = true;
		busy_thread = pthread_create(&busy_tid, NULL, busy_main,
		    NULL) == 0;
		busy = busy_thread;
	} else if (!on && busy_thread) {
		busy = false;
		busy_thread = false;
		join = true;
		pthread_cond_broadcast(&wake);
	}
	pthread_mutex_unlock(&lock);
	if (join)
		pthread_join(busy_tid, NULL);
}
