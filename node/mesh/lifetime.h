// Callbacks that outlive their object do nothing: timers and exchanges hold a
// weak reference to the owner's token instead of trusting `this`.
#pragma once

#include <memory>
#include <utility>

namespace flowmesh::mesh {

class Lifetime {
 public:
  // Wraps fn so that it runs only while this Lifetime exists.
  template <typename F>
  auto Guard(F fn) const {
    return [weak = std::weak_ptr<const char>(token_), fn = std::move(fn)](auto&&... args) mutable {
      if (!weak.expired()) fn(std::forward<decltype(args)>(args)...);
    };
  }

  // For callbacks that must run either way (to report an error when the
  // owner is gone): expired() says whether it is.
  std::weak_ptr<const char> Token() const { return token_; }

 private:
  std::shared_ptr<const char> token_ = std::make_shared<const char>(0);
};

}  // namespace flowmesh::mesh
