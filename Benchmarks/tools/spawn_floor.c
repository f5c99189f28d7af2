/* The floor for a cold start: how long a worker takes from being spawned to the first byte of
 * its answer to a request, with nothing in between (no gateway). That is what a cold request
 * through Portico measures too (its TTFB), so the difference is Portico's alone.
 *
 * usage: spawn_floor COUNT PORT CORE DIR COMMAND [ARG...]
 * Runs COMMAND in DIR COUNT times, with PORT set, pinned to CORE. Each time: fork and exec,
 * then try to connect to 127.0.0.1:PORT every 20 us until it accepts, send `GET /` and wait
 * for the first byte of the answer; print the microseconds from just before the fork to that
 * byte, one line per start; then SIGTERM the worker and reap it before the next start. Run
 * this helper on another core than CORE, so its polling does not slow the worker down.
 * With FLOOR_QUIET_MS set, each start waits that long after the previous worker was reaped,
 * as a cold start through Portico waits for the machine to be quiet: back to back, a start
 * finds the core awake and its caches warm, and takes half the time it does after a pause. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0) return fd;
    close(fd);
    return -1;
}

static int accepts(int port) {
    int fd = connect_to(port);
    if (fd >= 0) close(fd);
    return fd >= 0;
}

/* 1 once a GET / on a fresh connection got the first byte of an answer. */
static int answers(int port) {
    int fd = connect_to(port);
    if (fd < 0) return 0;
    static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char byte;
    int ok = write(fd, request, sizeof(request) - 1) == (ssize_t)(sizeof(request) - 1) && read(fd, &byte, 1) == 1;
    close(fd);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: spawn_floor COUNT PORT CORE DIR COMMAND [ARG...]\n");
        return 2;
    }
    int count = atoi(argv[1]);
    int port = atoi(argv[2]);
    cpu_set_t worker_cores;
    CPU_ZERO(&worker_cores);
    CPU_SET(atoi(argv[3]), &worker_cores);
    if (chdir(argv[4]) != 0) { perror("chdir"); return 2; }
    /* The environment Portico gives a worker (PORT, and PATH, HOME, LANG, TZ from its own),
     * plus the function's `env`, passed here as FLOOR_ENV_NAME=value. */
    extern char **environ;
    static char *environment[64];
    static char port_variable[32];
    int n = 0;
    snprintf(port_variable, sizeof(port_variable), "PORT=%s", argv[2]);
    environment[n++] = port_variable;
    const char *keep[] = {"PATH", "HOME", "LANG", "TZ"};
    for (int k = 0; k < 4; k++) {
        const char *value = getenv(keep[k]);
        if (value == NULL) continue;
        char *variable = malloc(strlen(keep[k]) + strlen(value) + 2);
        sprintf(variable, "%s=%s", keep[k], value);
        environment[n++] = variable;
    }
    for (char **variable = environ; *variable != NULL && n < 63; variable++) {
        if (strncmp(*variable, "FLOOR_ENV_", 10) == 0) environment[n++] = *variable + 10;
    }
    environment[n] = NULL;
    int null = open("/dev/null", O_WRONLY);
    const char *quiet = getenv("FLOOR_QUIET_MS");
    useconds_t quiet_us = quiet != NULL ? (useconds_t)atoi(quiet) * 1000 : 0;
    for (int i = 0; i < count; i++) {
        if (quiet_us > 0) usleep(quiet_us);
        if (accepts(port)) { fprintf(stderr, "port %d is already taken\n", port); return 1; }
        long long started = now_ns();
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) {
            /* The worker's output goes to /dev/null (under Portico it goes to a pipe). */
            dup2(null, 1);
            dup2(null, 2);
            sched_setaffinity(0, sizeof(worker_cores), &worker_cores);
            execvpe(argv[5], argv + 5, environment);
            _exit(127);
        }
        long long deadline = started + 10000000000LL;
        while (!answers(port)) {
            if (now_ns() > deadline) { fprintf(stderr, "worker never listened\n"); kill(pid, SIGKILL); return 1; }
            usleep(20);
        }
        long long ready = now_ns();
        printf("%lld\n", (ready - started) / 1000);
        fflush(stdout);
        /* Stopped as Portico stops a worker: SIGTERM, and SIGKILL if it has not exited within
         * a grace period (a Python worker whose SIGTERM handler raises SystemExit while it starts
         * a request's thread can hang in its exit; one left running kept the port, and every
         * later start failed). */
        kill(pid, SIGTERM);
        int status;
        long long grace = now_ns() + 2000000000LL;
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (now_ns() > grace) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                break;
            }
            usleep(1000);
        }
    }
    return 0;
}
