// SCHED_BATCH for bulk threads; thread names.
#include "node/common/sched.h"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "node/common/log.h"

namespace flowmesh {

bool SetThreadBatchPolicy(std::string_view thread_name) {
  // With pid 0, Linux applies the policy to the calling thread only.
  const int policy = sched_getscheduler(0);
  if (policy == SCHED_BATCH) return true;
  if (policy != SCHED_OTHER) return false;
  sched_param param{};
  if (sched_setscheduler(0, SCHED_BATCH, &param) != 0) {
    FM_LOG(Debug, "meshd") << "cannot run the " << thread_name
                           << " thread as SCHED_BATCH: " << std::strerror(errno);
    return false;
  }
  return true;
}

void SetThreadNormalPolicy(std::string_view thread_name) {
  if (sched_getscheduler(0) != SCHED_BATCH) return;
  sched_param param{};
  if (sched_setscheduler(0, SCHED_OTHER, &param) != 0)
    FM_LOG(Debug, "meshd") << "cannot run the " << thread_name
                           << " thread as SCHED_OTHER: " << std::strerror(errno);
}

void SetThreadName(const char* name) {
  // The kernel refuses names of 16 bytes or more: cut, never fail.
  pthread_setname_np(pthread_self(), std::string(name).substr(0, 15).c_str());
}

}  // namespace flowmesh
