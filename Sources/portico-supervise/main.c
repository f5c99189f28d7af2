// The per-worker supervisor and the spawner as a program of their own: small C, where running
// the gateway's own binary in their place (the fallback, see Sources/CPorticoSpawn/supervise.c)
// loads the whole Swift runtime and maps the gateway's image into every supervisor.
#include "CPorticoSpawn.h"

#include <string.h>

// The same program is the spawner (spawner.c), which the gateway starts once and which forks
// a supervisor per worker.
int main(int argc, char **argv, char **envp) {
    if (argc >= 1 && strcmp(argv[0], "portico-spawner") == 0) return portico_spawner_main(argc, argv, envp);
    return portico_supervise_main(argc, argv, envp);
}
