// Helpers shared by the mbxmove subcommands: exit codes, error printing,
// size parsing, JSON output and the progress line.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "store/status.h"
#include "store/store.h"

namespace mbx::cli {

using json = nlohmann::json;

// Exit codes, the same for every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFatal = 1;    // the command could not do its job
inline constexpr int kExitUsage = 2;    // bad flags or arguments
inline constexpr int kExitPartial = 3;  // some mailboxes failed (move) / problems found (verify)

// Prints "mbxmove: error: <message>" on stderr and returns the exit code for it.
int Fail(const Status& s);
int Fail(const std::string& message, int code = kExitFatal);

// "4096", "64K", "1MiB", "200MB", "2G", "1.5GiB" -> bytes. K/M/G/T and KiB...
// are powers of 1024; KB/MB/GB/TB powers of 1000.
Result<uint64_t> ParseBytes(const std::string& text);
// --changes-page-bytes (move --online, batch start): a size above 0; the
// error names the flag.
Result<uint64_t> ParseChangesPageBytes(const std::string& text);
// --data-sync-every SIZE (OpenOptions::data_sync_bytes): "0" = every commit.
Status ParseDataSyncEvery(const std::string& text, OpenOptions* options);
inline constexpr const char* kDataSyncEveryHelp =
    "Sync each local store's data.mdb once per SIZE of applied writes (a data checkpoint; the transaction log "
    "holds every write in between and a reopen replays it), or 0 to sync it at every commit";
std::string FormatBytes(double bytes);  // "12.3 MiB"

void PrintJson(const json& j);

// A live progress line on stderr, redrawn in place a few times a second while
// the object lives; nothing when stderr is not a terminal or when quiet.
// "HH:MM:SS" (UTC), the stamp of event lines on stderr.
std::string TimeStamp();

// SIGTERM and SIGINT, taken by a thread of their own (long-running commands:
// mover, batch start). Construct it before any other thread starts: it
// blocks both signals in this thread, so every thread started later
// inherits the mask; SIGPIPE is ignored. Watch starts the thread, which
// calls on_signal(signal, n) for the nth signal received (1, 2, ...) until
// the watcher is destroyed.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  void Watch(std::function<void(int sig, int n)> on_signal);
  // Stops and joins the thread (the destructor does too): call it before
  // what on_signal uses goes away.
  void Stop();

 private:
  sigset_t sigs_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

class Progress {
 public:
  using Render = std::function<std::string()>;
  Progress(bool quiet, Render render);
  ~Progress();  // stops and clears the line
  void Stop();

 private:
  void Run();
  bool quiet_;
  bool tty_;
  Render render_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

double SecondsSince(std::chrono::steady_clock::time_point t0);

}  // namespace mbx::cli
