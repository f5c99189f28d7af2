#define _GNU_SOURCE
#include "CPorticoSpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

// The spawner: a small process the gateway starts once, which forks a supervisor for every
// spawn instead of the gateway exec'ing one. An exec is the dearest part of starting a worker
// (a fresh address space, the binary's pages faulted in again, its start-up code run again),
// and the supervisor's exec was a third of a native cold start. A fork of the spawner, a
// process whose pages are all in place, costs a fraction of that.
//
// The supervisor must still be the gateway's child: the gateway reaps it, learns the worker's
// exit from it, and tells its supervisors from orphans by pid. So the spawner forks with
// CLONE_PARENT, which gives the new process the spawner's parent, the gateway, as its own.
//
// The gateway talks to it over a SOCK_SEQPACKET socket (fd 3): one request per spawn (the
// supervisor's argv and envp, the directory, and its descriptors as SCM_RIGHTS), one reply
// (the pid, or an errno). It ends when the gateway's end closes, however the gateway ends.

static const char spawner_name[] = "portico-spawner";
enum { spawner_socket = 3, max_request = 256 * 1024, max_fds = 5 };

enum { has_stdin = 1, has_ready = 2 };

struct spawn_request {
    uint32_t argc;
    uint32_t envc;
    uint32_t flags;
    uint32_t length;  // of the strings that follow: directory, argv..., envp..., each NUL-ended
};

struct spawn_reply {
    int32_t error;
    int32_t pid;
};

// The supervisor's command line. A fork shows its parent's (`portico-spawner`), where an exec'd
// supervisor showed `portico-supervise MEMORY OPEN_FILES READY_PORT PATH COMMAND...`, which is
// how a person (and a test) tells a worker's supervisor in `ps`. So the spawner is started with
// room in its argv (`title_room` bytes of padding, cleared at once), and each supervisor writes
// its own arguments there, as setproctitle does: /proc/PID/cmdline reads that memory.
enum { title_room = 4096 };
static char *title_area;
static size_t title_capacity;

static void set_title(int argc, char **argv) {
    if (title_area == NULL || title_capacity == 0) return;
    size_t used = 0;
    for (int i = 0; i < argc && used < title_capacity - 1; i++) {
        size_t length = strlen(argv[i]);
        if (length > title_capacity - 1 - used) length = title_capacity - 1 - used;
        memcpy(title_area + used, argv[i], length);
        used += length;
        title_area[used++] = '\0';
    }
    memset(title_area + used, 0, title_capacity - used);
}

// The signals the supervisor holds while it starts (see supervise.c): held from the fork on,
// so that a stop the gateway sends as soon as it has the pid is kept for the supervisor.
static const int held_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/// In the new supervisor: its descriptors (0-2, the control pipe as 3, the readiness socket as
/// 4), its own process group and its directory, then the supervisor's main.
static void become_supervisor(int *fds, int flags, int directory_fd, int started_fd, int argc, char **argv, char **envp) {
    sigset_t held;
    sigemptyset(&held);
    for (size_t i = 0; i < sizeof(held_signals) / sizeof(held_signals[0]); i++) sigaddset(&held, held_signals[i]);
    sigprocmask(SIG_BLOCK, &held, NULL);
    // The gateway signals the supervisor's process group as soon as it has the pid, so the
    // group must exist by then: the spawner answers only once this byte is written.
    if (setpgid(0, 0) != 0) _exit(127);
    char started = 1;
    if (write(started_fd, &started, 1) != 1) _exit(127);
    close(started_fd);
    prctl(PR_SET_NAME, (unsigned long)"portico-supervi");
    set_title(argc, argv);
    int null_fd = -1;
    if (!(flags & has_stdin)) null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    // [stdout, stderr, control, stdin?, ready?] as received; copied above 9 first so that
    // placing one never overwrites another still to be placed.
    int count = 3 + ((flags & has_stdin) ? 1 : 0) + ((flags & has_ready) ? 1 : 0);
    int high[max_fds];
    for (int i = 0; i < count; i++) {
        high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
        if (high[i] < 0) _exit(127);
    }
    int stdin_fd = (flags & has_stdin) ? high[3] : null_fd;
    int ready_fd = (flags & has_ready) ? high[count - 1] : -1;
    // None of these is already its target (the copies are above 9, /dev/null above 2), so each
    // dup2 makes a new descriptor without close-on-exec.
    if (stdin_fd < 0 || dup2(stdin_fd, 0) < 0 || dup2(high[0], 1) < 0 || dup2(high[1], 2) < 0 || dup2(high[2], 3) < 0) _exit(127);
    if (ready_fd >= 0 && dup2(ready_fd, 4) < 0) _exit(127);
    if (fchdir(directory_fd) != 0) _exit(127);
    // Nothing else of the spawner's (its socket to the gateway above all) reaches the supervisor.
    int first_closed = ready_fd >= 0 ? 5 : 4;
    if (syscall(SYS_close_range, first_closed, ~0U, 0) != 0) {
        for (int fd = first_closed; fd < 65536; fd++) close(fd);
    }
    _exit(portico_supervise_main(argc, argv, envp));
}

int portico_spawner_main(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc < 1 || strcmp(argv[0], spawner_name) != 0) {
        dprintf(2, "portico-spawner: started by the gateway only\n");
        return 125;
    }
    // The gateway's spawn set PDEATHSIG, which fires when the gateway's *thread* that spawned
    // it ends, not the gateway. The end of the socket is what ends the spawner.
    prctl(PR_SET_PDEATHSIG, 0);
    prctl(PR_SET_NAME, (unsigned long)spawner_name);
    if (argc >= 2) {
        title_area = argv[0];
        title_capacity = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
        for (int i = 1; i < argc; i++) memset(argv[i], 0, strlen(argv[i]));
    }
    fcntl(spawner_socket, F_SETFD, FD_CLOEXEC);
    // Its forks are the gateway's children, never its own, so it has nothing to reap.
    signal(SIGPIPE, SIG_IGN);
    static char buffer[sizeof(struct spawn_request) + max_request];
    for (;;) {
        union {
            char space[CMSG_SPACE(sizeof(int) * max_fds)];
            struct cmsghdr align;
        } control;
        struct iovec part = {buffer, sizeof(buffer)};
        struct msghdr message = {0};
        message.msg_iov = &part;
        message.msg_iovlen = 1;
        message.msg_control = control.space;
        message.msg_controllen = sizeof(control.space);
        ssize_t got = recvmsg(spawner_socket, &message, MSG_CMSG_CLOEXEC);
        if (got == 0) return 0;  // the gateway is gone
        if (got < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        int fds[max_fds];
        int fd_count = 0;
        for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
            if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
                int n = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                for (int i = 0; i < n; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
                    if (fd_count < max_fds) fds[fd_count++] = fd; else close(fd);
                }
            }
        }
        struct spawn_reply reply = {EINVAL, 0};
        struct spawn_request request;
        char **arguments = NULL;
        int directory_fd = -1;
        if ((size_t)got < sizeof(request) || (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) goto answer;
        memcpy(&request, buffer, sizeof(request));
        int expected_fds = 3 + ((request.flags & has_stdin) ? 1 : 0) + ((request.flags & has_ready) ? 1 : 0);
        if (request.length != (size_t)got - sizeof(request) || request.argc == 0 || request.argc > 65536 ||
            request.envc > 65536 || fd_count != expected_fds) goto answer;
        // The strings: directory, then argc arguments, then envc variables.
        arguments = calloc(request.argc + request.envc + 2, sizeof(char *));
        if (arguments == NULL) { reply.error = ENOMEM; goto answer; }
        char *cursor = buffer + sizeof(request);
        char *end = cursor + request.length;
        char *directory = NULL;
        uint32_t total = 1 + request.argc + request.envc;
        uint32_t index = 0;
        for (uint32_t i = 0; i < total; i++) {
            char *nul = memchr(cursor, '\0', (size_t)(end - cursor));
            if (nul == NULL) goto answer;
            if (i == 0) directory = cursor;
            else arguments[index++ + (i > request.argc ? 1 : 0)] = cursor;
            cursor = nul + 1;
        }
        char **child_argv = arguments;
        char **child_envp = arguments + request.argc + 1;
        // The directory is opened here, so that a missing one is this spawn's error, as it is
        // for an exec'd child; the supervisor changes into it with fchdir.
        directory_fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (directory_fd < 0) { reply.error = errno; goto answer; }
        // Raw clone: glibc's fork takes no flags. The child then runs only the supervisor's
        // code, which needs nothing of glibc's per-thread state that a raw clone leaves stale
        // (the cached thread id: no error-checking or robust mutexes are used).
        int started[2];
        if (pipe2(started, O_CLOEXEC) != 0) { reply.error = errno; goto answer; }
        long pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), NULL, NULL, NULL, 0UL);
        if (pid == 0) {
            close(started[0]);
            become_supervisor(fds, (int)request.flags, directory_fd, started[1], (int)request.argc, child_argv, child_envp);
        }
        close(started[1]);
        if (pid < 0) {
            reply.error = errno;
        } else {
            // One byte once its process group exists; end-of-file if it died before that.
            char byte;
            ssize_t read_count;
            do {
                read_count = read(started[0], &byte, 1);
            } while (read_count < 0 && errno == EINTR);
            if (read_count == 1) {
                reply.error = 0;
                reply.pid = (int32_t)pid;
            } else {
                reply.error = ECHILD;
            }
        }
        close(started[0]);
    answer:
        for (int i = 0; i < fd_count; i++) close(fds[i]);
        if (directory_fd >= 0) close(directory_fd);
        free(arguments);
        while (send(spawner_socket, &reply, sizeof(reply), MSG_NOSIGNAL) < 0) {
            if (errno != EINTR) return 1;
        }
    }
}

int portico_spawner_start(const char *path, int stderr_fd, int *socket_out, pid_t *pid_out) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return errno;
    // Room for each supervisor's command line (see set_title).
    static char room[title_room];
    memset(room, ' ', sizeof(room) - 1);
    room[sizeof(room) - 1] = '\0';
    char *argv[] = {(char *)spawner_name, room, NULL};
    char *envp[] = {NULL};
    int result = portico_spawn(path, argv, envp, "/", -1, -1, stderr_fd, 0, 0, pair[1], -1, pid_out);
    close(pair[1]);
    if (result != 0) {
        close(pair[0]);
        return result;
    }
    *socket_out = pair[0];
    return 0;
}

int portico_spawner_spawn(int socket, char *const argv[], char *const envp[], const char *directory,
                          int stdin_fd, int stdout_fd, int stderr_fd, int control_fd, int ready_fd, pid_t *pid_out) {
    if (stdout_fd < 0 || stderr_fd < 0 || control_fd < 0) return -1;
    struct spawn_request request = {0, 0, 0, 0};
    size_t length = strlen(directory) + 1;
    for (char *const *a = argv; *a != NULL; a++) { length += strlen(*a) + 1; request.argc++; }
    for (char *const *e = envp; *e != NULL; e++) { length += strlen(*e) + 1; request.envc++; }
    if (length > max_request) return -1;
    request.length = (uint32_t)length;
    request.flags = (stdin_fd >= 0 ? has_stdin : 0) | (ready_fd >= 0 ? has_ready : 0);
    char *body = malloc(sizeof(request) + length);
    if (body == NULL) return -1;
    memcpy(body, &request, sizeof(request));
    char *cursor = body + sizeof(request);
    size_t part_length = strlen(directory) + 1;
    memcpy(cursor, directory, part_length);
    cursor += part_length;
    for (char *const *a = argv; *a != NULL; a++) { part_length = strlen(*a) + 1; memcpy(cursor, *a, part_length); cursor += part_length; }
    for (char *const *e = envp; *e != NULL; e++) { part_length = strlen(*e) + 1; memcpy(cursor, *e, part_length); cursor += part_length; }
    int fds[max_fds] = {stdout_fd, stderr_fd, control_fd};
    int fd_count = 3;
    if (stdin_fd >= 0) fds[fd_count++] = stdin_fd;
    if (ready_fd >= 0) fds[fd_count++] = ready_fd;
    union {
        char space[CMSG_SPACE(sizeof(int) * max_fds)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct iovec part = {body, sizeof(request) + length};
    struct msghdr message = {0};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control.space;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
    memcpy(CMSG_DATA(header), fds, sizeof(int) * fd_count);
    ssize_t sent;
    do {
        sent = sendmsg(socket, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    free(body);
    if (sent < 0) return -1;
    struct spawn_reply reply;
    ssize_t got;
    do {
        got = recv(socket, &reply, sizeof(reply), 0);
    } while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof(reply)) return -1;
    if (reply.error != 0) return reply.error;
    *pid_out = reply.pid;
    return 0;
}
