/*
** attnc.c -- the command line: `attnc VERB [options]`. This file only
** dispatches; each verb is tools/cmd_VERB.c, listed in CLI_VERBS (cli.h).
*/
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

#define CLI_ENTRY(name) &cli_verb_##name,
static const CliVerb *const verbs[] = { CLI_VERBS(CLI_ENTRY) };
#undef CLI_ENTRY
#define NVERBS ((int)(sizeof verbs / sizeof verbs[0]))

static void usage(FILE *to) {
  fprintf(to,
          "usage: attnc COMMAND [options]\n\n"
          "attnc compiles attention patterns written in Lua (a mask and a score\n"
          "modification) into fused attention kernels, and runs them.\n\n"
          "commands:\n");
  for (int i = 0; i < NVERBS; i++) fprintf(to, "  %-10s %s\n", verbs[i]->name, verbs[i]->summary);
  fprintf(to,
          "\n  attnc COMMAND --help   the options of a command\n"
          "  attnc --version        print the version and the targets of this build\n\n"
          "Exit status: 0 success, 1 a check failed, 2 a usage or input error,\n"
          "3 an internal error.\n");
}

static const CliVerb *find_verb(const char *name) {
  for (int i = 0; i < NVERBS; i++)
    if (strcmp(verbs[i]->name, name) == 0) return verbs[i];
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    char names[256];
    size_t n = 0;
    names[0] = 0;
    for (int i = 0; i < NVERBS && n < sizeof names; i++)
      n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", verbs[i]->name);
    return cli_error("no command given (one of: %s; see 'attnc --help')", names);
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    if (strcmp(cmd, "help") == 0 && argc > 2) {          /* attnc help VERB */
      const CliVerb *v = find_verb(argv[2]);
      if (!v) return cli_error("unknown command '%s' (see 'attnc --help')", argv[2]);
      cli_help(v, stdout);
      return CLI_EXIT_OK;
    }
    usage(stdout);
    return CLI_EXIT_OK;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    printf("attnc %s\ntargets:", attnc_version());      /* the targets of this build */
    for (int t = ATTNC_TARGET_REF; t <= ATTNC_TARGET_CUDA; t++)
      if (attnc_target_available((attnc_target)t)) printf(" %s", attnc_target_name((attnc_target)t));
    printf("\n");
    return CLI_EXIT_OK;
  }
  if (cmd[0] == '-') return cli_error("unknown option '%s' (see 'attnc --help')", cmd);
  const CliVerb *v = find_verb(cmd);
  if (!v) return cli_error("unknown command '%s' (see 'attnc --help')", cmd);
  int rc = v->main(v, argc - 1, argv + 1);
  if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
    rc = cli_error("cannot write to standard output");
  return rc;
}
