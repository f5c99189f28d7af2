#ifndef C_PORTICO_SPAWN_H
#define C_PORTICO_SPAWN_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` in `directory`, as the leader of a new process group,
/// with PR_SET_PDEATHSIG so it dies with the spawning thread's process.
///
/// The child's stdin, stdout and stderr become `stdin_fd`, `stdout_fd` and `stderr_fd` (-1: /dev/null).
/// `memory_limit` (RLIMIT_AS) and `open_files_limit` (RLIMIT_NOFILE) apply when positive.
/// `control_fd` (-1: none) becomes the child's fd 3, for a supervisor (see supervise.c), and
/// `ready_fd` (-1: none; only with a control pipe) its fd 4, where it reports readiness.
/// Returns 0 and sets `*pid_out`, or returns the errno of what failed (fork, or exec in the child,
/// which the child reports through a close-on-exec pipe).
int portico_spawn(const char *path, char *const argv[], char *const envp[], const char *directory,
                  int stdin_fd, int stdout_fd, int stderr_fd,
                  long long memory_limit, long long open_files_limit, int control_fd, int ready_fd, pid_t *pid_out);

/// What a supervisor sends on its readiness socket (fd 4, a datagram socket) once the worker's
/// port on 127.0.0.1 accepts a connection: the port, the supervisor's own pid, and its
/// descriptor of that connection, which it holds for the gateway to take (see supervise.c).
struct portico_ready_report {
    int port;
    int supervisor_pid;
    int connection_fd;
};

/// A close-on-exec copy of descriptor `target_fd` of process `pid` (pidfd_getfd), or -1 with
/// errno set.
int portico_take_descriptor(pid_t pid, int target_fd);

/// The remote port of the TCP socket `fd`, or -1.
int portico_peer_port(int fd);

/// Sends `signal` to the whole process group led by `pid`.
int portico_kill_group(pid_t pid, int signal);

/// Non-blocking reap of one child: 1 and its raw status when it exited, 0 while it runs, -1 on error.
int portico_try_reap(pid_t pid, int *status_out);

/// Helpers for the raw wait status, which Swift cannot read through the C macros.
int portico_exited(int status);
int portico_exit_status(int status);
int portico_signaled(int status);
int portico_term_signal(int status);

/// pipe2(O_CLOEXEC), which Glibc does not export to Swift; returns 0 or errno.
int portico_pipe_cloexec(int fds[2]);

/// Atomically swaps two paths (renameat2 RENAME_EXCHANGE); returns 0 or errno.
int portico_rename_exchange(const char *from, const char *to);

/// The supervisor (supervise.c): argv is `portico-supervise MEMORY OPEN_FILES READY_PORT PATH ARGV0
/// ARGS...` with the control pipe as fd 3 and, when READY_PORT is not 0, the readiness socket as
/// fd 4. Returns only on bad arguments.
int portico_supervise_main(int argc, char **argv, char **envp);

/// The spawner (spawner.c): argv is `portico-spawner`, with its socket to the gateway as fd 3.
int portico_spawner_main(int argc, char **argv, char **envp);

/// Starts the spawner from `path` (the supervisor's binary), its stderr `stderr_fd`; sets the
/// gateway's end of its socket and its pid. Returns 0 or errno.
int portico_spawner_start(const char *path, int stderr_fd, int *socket_out, pid_t *pid_out);

/// Has the spawner start a supervisor as `portico_spawn(path = the supervisor, ...)` with a
/// control pipe would, except that the supervisor is a fork of the spawner rather than an exec.
/// `argv[0]` must be the supervisor's name. Returns 0 and sets `*pid_out`; the errno of the
/// spawn's own failure (a missing directory); or -1 when the spawner cannot be used (it is
/// gone, or the request is too large), and the caller spawns the usual way. Unless it returns
/// -1, `lost_out[0]` and `lost_out[1]` are children of the caller's for it to reap (a spare that
/// went away, a supervisor that died before it could be named), or 0.
int portico_spawner_spawn(int socket, char *const argv[], char *const envp[], const char *directory,
                          int stdin_fd, int stdout_fd, int stderr_fd, int control_fd, int ready_fd, pid_t *pid_out,
                          pid_t lost_out[2]);

/// Has the spawner fork a spare supervisor, which the next spawn uses (see spawner.c). Returns 0
/// and sets `*pid_out` to the spare's pid (a child of the caller's, already in its own process
/// group); an errno; or -1 when the spawner is gone. `lost_out` as for a spawn; a spare that
/// ended since the last request is named there, and replaced.
int portico_spawner_prefork(int socket, pid_t *pid_out, pid_t lost_out[2]);

/// Whether child `pid` has exited (and is waiting to be reaped), without reaping it.
int portico_has_exited(pid_t pid);

/// Makes the calling process a child subreaper; returns 0 or errno.
int portico_set_child_subreaper(void);

/// Gives the heap's free pages back to the system (malloc_trim(0), which Glibc does not export
/// to Swift).
void portico_trim_heap(void);

#endif
