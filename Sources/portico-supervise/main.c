// The per-worker supervisor as a program of its own: a few kilobytes of C that start in well
// under a millisecond, where running the gateway's own binary again (the fallback, see
// Sources/CPorticoSpawn/supervise.c) would load the whole Swift runtime for every cold start.
#include "CPorticoSpawn.h"

int main(int argc, char **argv, char **envp) {
    return portico_supervise_main(argc, argv, envp);
}
