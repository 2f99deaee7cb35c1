// Feasibility check for the deferred data sync design (issue 12): commits with MDB_NOSYNC, a
// checkpoint = mdb_env_sync + a copy of the two meta pages + a read txn pinned on that snapshot;
// many later commits (which would reuse freed pages); then the meta pages are written back and
// the environment reopened: it must show exactly the checkpoint's contents.
//   gcc -O2 -o /tmp/mr perf/lmdb_meta_restore_check.c -llmdb
//   mkdir /tmp/mr1 && /tmp/mr /tmp/mr1 1   # pinned: exit 0, "wrong values 0"
//   mkdir /tmp/mr0 && /tmp/mr /tmp/mr0 0   # not pinned: exit 1, every value wrong
// It checks the mechanics only (LMDB opens at the restored meta, the pinned reader keeps the
// checkpoint's pages from reuse); a power loss's dropped writes are for the power-loss campaign.
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#define CHECK(x) do { int rc_ = (x); if (rc_) { fprintf(stderr, "%s: %s\n", #x, mdb_strerror(rc_)); exit(1); } } while (0)
static void put_round(MDB_env* env, MDB_dbi dbi, int round, int n) {
  MDB_txn* t; CHECK(mdb_txn_begin(env, NULL, 0, &t));
  for (int i = 0; i < n; i++) {
    char k[32], v[600]; snprintf(k, sizeof k, "key%06d", i);
    memset(v, 'a' + round % 26, sizeof v); snprintf(v, 32, "r%d-%d", round, i);
    MDB_val kv = {strlen(k), k}, vv = {sizeof v, v};
    CHECK(mdb_put(t, dbi, &kv, &vv, 0));
  }
  CHECK(mdb_txn_commit(t));
}
int main(int argc, char** argv) {
  const char* dir = argv[1];
  int pin = argc > 2 ? atoi(argv[2]) : 1;
  MDB_env* env; CHECK(mdb_env_create(&env)); CHECK(mdb_env_set_mapsize(env, 1ull << 30));
  CHECK(mdb_env_open(env, dir, MDB_NOSYNC | MDB_NOTLS, 0600));
  MDB_txn* t; MDB_dbi dbi; CHECK(mdb_txn_begin(env, NULL, 0, &t)); CHECK(mdb_dbi_open(t, NULL, 0, &dbi)); CHECK(mdb_txn_commit(t));
  for (int r = 0; r < 5; r++) put_round(env, dbi, r, 2000);
  // checkpoint: sync, save the meta pages, pin a reader on this snapshot
  CHECK(mdb_env_sync(env, 1));
  MDB_envinfo info; CHECK(mdb_env_info(env, &info));
  size_t ckpt_txn = info.me_last_txnid;
  MDB_stat st; CHECK(mdb_env_stat(env, &st));
  size_t psize = st.ms_psize;
  char path[512]; snprintf(path, sizeof path, "%s/data.mdb", dir);
  int fd = open(path, O_RDWR);
  char* metas = malloc(2 * psize);
  if (fd < 0 || metas == NULL) { perror(path); return 1; }
  if (pread(fd, metas, 2 * psize, 0) != (ssize_t)(2 * psize)) { perror("pread"); return 1; }
  MDB_txn* pinned = NULL;
  if (pin) CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &pinned));
  // later commits: overwrite every key many times (frees and reuses pages)
  for (int r = 5; r < 40; r++) put_round(env, dbi, r, 2000);
  CHECK(mdb_env_info(env, &info));
  size_t last_txn = info.me_last_txnid;
  if (pinned) mdb_txn_abort(pinned);
  mdb_env_close(env);  // as a crash would leave it (nothing synced since the checkpoint; here the page cache has it)
  // restore the checkpoint's meta pages, then reopen
  if (pwrite(fd, metas, 2 * psize, 0) != (ssize_t)(2 * psize)) { perror("pwrite"); return 1; }
  if (fdatasync(fd) != 0) { perror("fdatasync"); return 1; }
  close(fd);
  free(metas);
  CHECK(mdb_env_create(&env)); CHECK(mdb_env_set_mapsize(env, 1ull << 30)); CHECK(mdb_env_open(env, dir, MDB_NOTLS, 0600));
  CHECK(mdb_env_info(env, &info));
  printf("pin=%d checkpoint txn %zu, last txn before restore %zu, txn after reopen %zu\n", pin, ckpt_txn, last_txn, info.me_last_txnid);
  CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &t)); CHECK(mdb_dbi_open(t, NULL, 0, &dbi));
  int bad = 0;
  for (int i = 0; i < 2000; i++) {
    char k[32], want[32]; snprintf(k, sizeof k, "key%06d", i); snprintf(want, sizeof want, "r4-%d", i);
    MDB_val kv = {strlen(k), k}, vv;
    int rc = mdb_get(t, dbi, &kv, &vv);
    if (rc || vv.mv_size != 600 || strncmp(vv.mv_data, want, strlen(want)) || ((char*)vv.mv_data)[599] != 'a' + 4) bad++;
  }
  MDB_cursor* c; CHECK(mdb_cursor_open(t, dbi, &c)); MDB_val k, v; int n = 0;
  while (mdb_cursor_get(c, &k, &v, n ? MDB_NEXT : MDB_FIRST) == 0) n++;
  printf("keys %d, wrong values %d\n", n, bad);
  mdb_txn_abort(t);
  // the environment must also take new writes after it
  put_round(env, dbi, 99, 2000);
  mdb_env_close(env);
  return bad != 0 || n != 2000;
}
