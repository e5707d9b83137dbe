#pragma once
// A network as a C++ type:
//
//   using net_t = fnn::sequential<fnn::input<784>,
//                                 fnn::dense<256>, fnn::batch_norm, fnn::gelu,
//                                 fnn::dense<10>>;
//   net_t net{fnn::seed{42}};
//   fnn::train_stats<float> st = net.train_step(x, labels, fnn::loss::softmax_cross_entropy{}, opt);
//   if (!st.finite) ...;                   // st.loss, st.grad_norm; `float loss = net.train_step(...)` also works
//   fnn::matrix<float> logits = net.infer(x);   // an owning copy; infer_into / infer_view avoid it
//
// Feature widths are compile-time (checked, with the numbers in the error); the batch size is a
// run-time value checked before anything runs. By default the network runs its compile-time fusion
// plan (network/plan.hpp); fnn::unfused_sequential runs the same layers one at a time through their
// reference code, the oracle the fused stages are tested against.
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "fnn/core/diagnostics.hpp"
#include "fnn/core/errors.hpp"
#include "fnn/core/tensor.hpp"
#include "fnn/expr/assign.hpp"
#include "fnn/layers/init.hpp"
#include "fnn/layers/layer.hpp"
#include "fnn/layers/penalty.hpp"
#include "fnn/network/plan.hpp"
#include "fnn/network/stages.hpp"

namespace fnn {

template <std::size_t Features>
struct input final {
  static constexpr std::size_t features = Features;
};

struct seed final {
  std::uint64_t value = 0;
};

// What train_step reports. It converts to the loss, so `float loss = net.train_step(...)` still compiles;
// `finite` is the one flag to test: a NaN or infinite loss or gradient clears it (the optimizer has stepped
// all the same, as torch.optim would, so the weights then hold NaN or infinity too).
template <class T>
struct train_stats final {
  T loss = T(0);          // the batch loss, penalty terms included
  double grad_norm = 0;   // global L2 norm of all parameter gradients, before any clipping by the optimizer
  bool finite = true;     // loss and grad_norm are both finite
  operator T() const noexcept { return loss; }
};

namespace detail {

template <class T>
inline constexpr bool is_input = false;
template <std::size_t F>
inline constexpr bool is_input<input<F>> = true;

template <class... S>
struct type_list {};

// The initializer hint for a dense layer: that of the first activation after it, unless another
// dense layer comes first (then the dense layer is "not followed by an activation").
template <class S>
struct init_hint_of {
  using type = typename S::init_hint;
};
template <class... Rest>
struct next_activation_hint {
  using type = init::no_activation_hint;
};
template <class S, class... Rest>
struct next_activation_hint<S, Rest...> {
  static constexpr layer_role r = [] {
    if constexpr (layer_spec<S>) return S::role;
    else return layer_role::regularization;
  }();
  using type = typename std::conditional_t<
      r == layer_role::activation, init_hint_of<S>,
      std::conditional_t<r == layer_role::dense, std::type_identity<init::no_activation_hint>,
                         next_activation_hint<Rest...>>>::type;
};

// Stands in for a type that is not a layer, so that only the diagnostic is reported.
struct invalid_spec {
  template <class T, std::size_t, std::size_t In, class>
  struct layer : stateless_layer {
    static constexpr std::size_t in_features = In, out_features = In;
    static constexpr std::string_view name = "invalid";
    void forward(const_matrix_view<T>, matrix_view<T>, mode, random_engine&) {}
    void backward(const_matrix_view<T>, const_matrix_view<T>, const_matrix_view<T>, matrix_view<T>, mode) {}
  };
  template <class T, std::size_t I, std::size_t In, class H>
  using bind = layer<T, I, In, H>;
};

template <class T, std::size_t Index, std::size_t In, class Specs, class Bound>
struct bind_all;
template <class T, std::size_t Index, std::size_t In, class... Bound>
struct bind_all<T, Index, In, type_list<>, type_list<Bound...>> {
  using type = std::tuple<Bound...>;
  static constexpr std::size_t out_features = In;
};
template <class T, std::size_t Index, std::size_t In, class S, class... Rest, class... Bound>
struct bind_all<T, Index, In, type_list<S, Rest...>, type_list<Bound...>> {
  using at = diagnostics::at_layer<Index>;
  static_assert(diagnostics::holds<typename at::template the_type<S>::template is_an_fnn_layer<layer_spec<S>>>);
  using spec = std::conditional_t<layer_spec<S>, S, invalid_spec>;
  using layer = typename spec::template bind<T, Index, In, typename next_activation_hint<Rest...>::type>;
  using next = bind_all<T, Index + 1, layer::out_features, type_list<Rest...>, type_list<Bound..., layer>>;
  using type = typename next::type;
  static constexpr std::size_t out_features = next::out_features;
};

template <std::size_t I, class Plan>
struct stage_at;
template <std::size_t I, class... Stages>
struct stage_at<I, plan::stages<Stages...>> {
  using type = std::tuple_element_t<I, std::tuple<Stages...>>;
};

template <class L>
constexpr index_t min_train_batch_of() {
  if constexpr (requires { L::min_train_batch; }) return L::min_train_batch;
  else return 1;
}

template <class X>
inline constexpr bool is_mutable_view = false;
template <class U>
inline constexpr bool is_mutable_view<matrix_view<U>> = !std::is_const_v<U>;

// A target as the loss sees it: matrices and mutable views become views of const (a loss deduces T from
// matrix_view<const T>), label vectors become spans.
template <class X>
decltype(auto) as_target(const X& t) {
  if constexpr (requires { t.view(); }) return t.view();
  else if constexpr (is_mutable_view<X>) return const_matrix_view<std::remove_pointer_t<decltype(t.data())>>(t);
  else if constexpr (requires { std::span<const std::int32_t>(t); }) return std::span<const std::int32_t>(t);
  else return (t);
}

}  // namespace detail

template <class Policy, class T, class Input, class... Specs>
class network final {
  using first_check = diagnostics::the_first_type_of_sequential<Input>;
  static_assert(diagnostics::holds<typename first_check::template is_fnn_input_features<detail::is_input<Input>>>);
  using layer_count_check = diagnostics::sequential_has_layers_after_input<sizeof...(Specs)>;
  static_assert(diagnostics::holds<typename layer_count_check::template but_needs_at_least<1>>);
  static constexpr std::size_t input_features = [] {
    if constexpr (detail::is_input<Input>) return Input::features;
    else return std::size_t{1};
  }();
  using input_check = diagnostics::fnn_input_declares_features<input_features>;
  static_assert(diagnostics::holds<typename input_check::which_must_be_positive>);
  using binding = detail::bind_all<T, 0, input_features, detail::type_list<Specs...>, detail::type_list<>>;

 public:
  using value_type = T;
  using policy = Policy;
  using layers_type = typename binding::type;
  using plan = plan::of<Policy, Specs...>;
  static constexpr std::size_t in_features = input_features;
  static constexpr std::size_t out_features = binding::out_features;
  static constexpr std::size_t layer_count = sizeof...(Specs);
  template <std::size_t I>
  using layer_type = std::tuple_element_t<I, layers_type>;

  explicit network(seed s = seed{}) { reset(s); }

  // Re-initializes every parameter and buffer from the seed.
  void reset(seed s) {
    random_engine init_rng(s.value);
    for_each_layer([&](auto& layer, auto) { layer.initialize(init_rng); });
    rng_.seed(s.value ^ 0x9E3779B97F4A7C15ull);  // a different stream for dropout masks
    zero_grad();
    has_forward_ = false;
  }

  // Runs the network on a batch (rows = samples). The view stays valid until the next forward.
  const_matrix_view<T> forward(const_matrix_view<T> x, mode m = mode::train) {
    check_input(x, m);
    acts_[0].resize(x.rows(), index_t(in_features));
    for (index_t i = 0; i < x.rows(); ++i) std::copy(x.row(i), x.row(i) + in_features, acts_[0].data() + i * index_t(in_features));
    auto ctx = context();
    for_each_stage([&]<class Stage>(std::size_t s) { detail::stage_runner<Stage>::forward(ctx, workspaces_[s], m); });
    last_mode_ = m;
    has_forward_ = true;
    return acts_[layer_count].view();
  }

  // Back-propagates dL/d(output) of the last forward; parameter gradients accumulate.
  // With want_input_gradient, input_gradient() holds dL/dx afterwards.
  void backward(const_matrix_view<T> d_out, bool want_input_gradient = false) {
    if (!has_forward_) throw value_error("backward called before forward");
    const index_t n = acts_[layer_count].rows();
    if (d_out.rows() != n || d_out.cols() != index_t(out_features))
      throw shape_error("output gradient is " + std::to_string(d_out.rows()) + "x" + std::to_string(d_out.cols()) +
                        ", the last forward produced " + std::to_string(n) + "x" + std::to_string(out_features));
    grads_[layer_count].resize(n, index_t(out_features));
    for (index_t i = 0; i < n; ++i)
      std::copy(d_out.row(i), d_out.row(i) + out_features, grads_[layer_count].data() + i * index_t(out_features));
    backward_from_output_gradient(want_input_gradient);
  }

  const_matrix_view<T> input_gradient() const { return grads_[0].view(); }
  const_matrix_view<T> output() const { return acts_[layer_count].view(); }

  // Eval-mode forward (running statistics, no dropout) into a matrix the caller owns: later calls on the
  // network leave it alone.
  matrix<T> infer(const_matrix_view<T> x) {
    const auto y = infer_view(x);
    matrix<T> out(y.rows(), y.cols());
    copy_rows(y, out.view());
    return out;
  }
  // The same into the caller's x.rows() x out_features view (no allocation once the network has seen the
  // batch size).
  void infer_into(const_matrix_view<T> x, matrix_view<T> out) {
    if (out.rows() != x.rows() || out.cols() != index_t(out_features))
      throw shape_error("infer_into output is " + std::to_string(out.rows()) + "x" + std::to_string(out.cols()) +
                        ", the network gives " + std::to_string(x.rows()) + "x" + std::to_string(out_features) +
                        " for this input");
    copy_rows(infer_view(x), out);
  }
  // The same without a copy: a view of the network's own output buffer, valid until the next call on this
  // network (the next infer, forward or train_step rewrites it).
  const_matrix_view<T> infer_view(const_matrix_view<T> x) { return forward(x, mode::eval); }

  void zero_grad() {
    for_each_parameter([](parameter_ref<T>& p) {
      for (T& g : p.grad) g = T(0);
    });
  }

  // One training step: zero_grad, forward (train mode), loss, backward, penalties, optimizer step.
  // Everything is validated before anything changes. Returns the loss (with penalty terms), the gradient
  // norm and whether both are finite (train_stats).
  template <class Loss, class Target, class Optimizer, penalty::penalty_term... Penalties>
  train_stats<T> train_step(const_matrix_view<T> x, const Target& target, const Loss& loss, Optimizer& opt,
                            const Penalties&... penalties) {
    // A schedule (it has lr_at) is the likeliest wrong argument: it gets its own sentence.
    constexpr bool can_step = requires(Optimizer& o, network& n) { o.step(n); };
    constexpr bool is_schedule = !can_step && requires(const Optimizer& o) { o.lr_at(std::int64_t{0}); };
    using check = diagnostics::the_optimizer_argument<Optimizer>;
    static_assert(diagnostics::holds<typename check::template is_a_learning_rate_schedule<is_schedule>>);
    static_assert(diagnostics::holds<typename check::template has_step_taking_the_network<can_step || is_schedule>>);
    train_stats<T> st;
    st.loss = compute_gradients(x, target, loss, mode::train, penalties...);
    st.grad_norm = grad_norm();
    st.finite = std::isfinite(st.loss) && std::isfinite(st.grad_norm);
    if constexpr (can_step) opt.step(*this);  // else: diagnosed above, and no second error
    return st;
  }

  // Global L2 norm of the current parameter gradients (per-array sums of squares in T, combined in double, as
  // torch.nn.utils.clip_grad_norm_ computes it): NaN if any gradient is NaN, infinite if any is infinite.
  double grad_norm() {
    double total = 0;
    for_each_parameter([&](parameter_ref<T>& p) {
      const auto g = expr::array(std::span<const T>(p.grad));
      total += static_cast<double>(expr::sum(g * g));
    });
    return std::sqrt(total);
  }

  // zero_grad + forward + loss + backward (+ penalty gradients), without an optimizer step: what
  // train_step does before updating, and what gradient checking differentiates.
  template <class Loss, class Target, penalty::penalty_term... Penalties>
  T compute_gradients(const_matrix_view<T> x, const Target& target, const Loss& loss, mode m,
                      const Penalties&... penalties) {
    static_assert(diagnostics::holds<typename diagnostics::the_loss<Loss>::template needs_network_outputs<
                                     Loss::min_outputs>::template but_the_network_has<out_features>>);
    check_input(x, m);
    const auto t = detail::as_target(target);
    Loss::validate(x.rows(), index_t(out_features), t);
    zero_grad();
    const auto y = forward(x, m);
    grads_[layer_count].resize(y.rows(), y.cols());
    T value = loss(y, t, grads_[layer_count].view());
    backward_from_output_gradient(false);
    if constexpr (sizeof...(Penalties) > 0) {
      double extra = 0;
      for_each_parameter([&](parameter_ref<T>& p) {
        if (!decays_by_default(p.kind)) return;
        if (p.frozen) {  // in the loss, as in torch, but no gradient
          ((extra += penalties.value(p)), ...);
          return;
        }
        ((extra += penalties.value(p), penalties.add_gradient(p)), ...);
      });
      value += T(extra);
    }
    return value;
  }

  // zero_grad + forward + loss + backward without penalties or an optimizer step, calling
  // on_ready(first_layer) after each fused stage's backward: from then on the gradients of the parameters of
  // every layer >= first_layer are final. Data-parallel training (fnn/distributed) starts their all-reduce
  // there, so that communication overlaps the rest of backward.
  template <class Loss, class Target, class OnReady>
    requires std::invocable<OnReady&, index_t>
  T compute_gradients_streamed(const_matrix_view<T> x, const Target& target, const Loss& loss, mode m,
                               OnReady&& on_ready) {
    static_assert(diagnostics::holds<typename diagnostics::the_loss<Loss>::template needs_network_outputs<
                                     Loss::min_outputs>::template but_the_network_has<out_features>>);
    check_input(x, m);
    const auto t = detail::as_target(target);
    Loss::validate(x.rows(), index_t(out_features), t);
    zero_grad();
    const auto y = forward(x, m);
    grads_[layer_count].resize(y.rows(), y.cols());
    const T value = loss(y, t, grads_[layer_count].view());
    backward_from_output_gradient(false, on_ready);
    return value;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    for_each_layer([&](auto& layer, auto idx) { layer.for_each_parameter(index_t(decltype(idx)::value), f); });
  }
  template <class F>
  void for_each_buffer(F&& f) {
    for_each_layer([&](auto& layer, auto idx) { layer.for_each_buffer(index_t(decltype(idx)::value), f); });
  }
  std::size_t parameter_count() {
    std::size_t n = 0;
    for_each_parameter([&](parameter_ref<T>& p) { n += p.value.size(); });
    return n;
  }

  // Transfer learning. A frozen layer's parameters take no gradient (backward skips their products and
  // reductions; optimizers neither update nor decay them: torch's requires_grad_(False)), and a frozen
  // batch_norm normalizes with its running statistics in train mode too and leaves them unchanged (torch's
  // module.eval() inside a training model). Backward stops below the lowest layer with a parameter that trains,
  // and the stage holding it computes no input gradient (unless backward(..., true) asks for it). Layer indices
  // count from 0 after input<>, as the parameter names do; freeze_layers(first, last) freezes [first, last).
  void freeze(std::size_t layer) { set_frozen(layer, true); }
  void unfreeze(std::size_t layer) { set_frozen(layer, false); }
  void freeze_layers(std::size_t first, std::size_t last) {
    if (first > last || last > layer_count)
      throw value_error("freeze_layers(" + std::to_string(first) + ", " + std::to_string(last) +
                        "): the network has layers [0, " + std::to_string(layer_count) + ")");
    for (std::size_t i = first; i < last; ++i) freeze(i);
  }
  void unfreeze_all() {
    for_each_layer([](auto& layer, auto) { layer.freezing() = freeze_state{}; });
  }
  bool is_frozen(std::size_t layer) {
    bool frozen = false;
    visit_layer(layer, "is_frozen", [&](auto& l) { frozen = l.freezing().layer; });
    return frozen;
  }
  // One parameter by name ("0.bias"): no gradient, no update; a batch norm's statistics are not affected (as
  // requires_grad_(False) on one tensor in torch).
  void freeze_parameter(std::string_view name) { set_parameter_frozen(name, true); }
  void unfreeze_parameter(std::string_view name) { set_parameter_frozen(name, false); }
  bool is_parameter_frozen(std::string_view name) {
    bool frozen = false;
    find_parameter(name, [&](auto&, parameter_ref<T>& p, unsigned) { frozen = p.frozen; });
    return frozen;
  }

  template <std::size_t I>
  layer_type<I>& layer() noexcept {
    return std::get<I>(layers_);
  }
  layers_type& layers() noexcept { return layers_; }

  // The engine behind dropout masks; gradient checking saves and restores it so every evaluation
  // sees the same masks.
  random_engine& engine() noexcept { return rng_; }

  // One line per layer: index, name, widths, parameter count.
  std::string summary() {
    std::string s = "input " + std::to_string(in_features) + "\n";
    for_each_layer([&](auto& layer, auto idx) {
      std::size_t params = 0;
      layer.for_each_parameter(0, [&](parameter_ref<T>& p) { params += p.value.size(); });
      s += std::to_string(decltype(idx)::value) + " " + std::string(layer.name) + " " +
           std::to_string(layer.in_features) + " -> " + std::to_string(layer.out_features) +
           (params ? ", " + std::to_string(params) + " parameters" : std::string()) + "\n";
    });
    return s;
  }

 private:
  template <class F>
  void for_each_layer(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f(std::get<I>(layers_), std::integral_constant<std::size_t, I>{}), ...);
    }(std::make_index_sequence<layer_count>{});
  }

  static constexpr index_t min_train_batch = [] {
    index_t m = 1;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((m = std::max(m, detail::min_train_batch_of<std::tuple_element_t<I, layers_type>>())), ...);
    }(std::make_index_sequence<layer_count>{});
    return m;
  }();

  static void copy_rows(const_matrix_view<T> from, matrix_view<T> to) {
    for (index_t i = 0; i < from.rows(); ++i) std::copy(from.row(i), from.row(i) + from.cols(), to.row(i));
  }

  void check_input(const_matrix_view<T> x, mode m) const {
    if (x.cols() != index_t(in_features))
      throw shape_error("input has " + std::to_string(x.cols()) + " features per sample, the network expects " +
                        std::to_string(in_features));
    if (x.rows() == 0) throw shape_error("empty batch (0 samples)");
    if (m == mode::train && x.rows() < min_train_batch)
      throw value_error("batch of " + std::to_string(x.rows()) + " sample(s) in train mode; batch_norm needs at least " +
                        std::to_string(min_train_batch));
  }

  template <class F>
  void visit_layer(std::size_t index, const char* what, F&& f) {
    if (index >= layer_count)
      throw value_error(std::string(what) + "(" + std::to_string(index) + "): the network has layers [0, " +
                        std::to_string(layer_count) + ")");
    for_each_layer([&](auto& layer, auto idx) {
      if (decltype(idx)::value == index) f(layer);
    });
  }
  void set_frozen(std::size_t index, bool frozen) {
    visit_layer(index, frozen ? "freeze" : "unfreeze", [&](auto& l) { l.freezing() = freeze_state{0, frozen}; });
  }
  // f(layer, parameter, its position k in the layer) for the parameter called name; throws if there is none.
  template <class F>
  void find_parameter(std::string_view name, F&& f) {
    bool found = false;
    for_each_layer([&](auto& layer, auto idx) {
      unsigned k = 0;
      layer.for_each_parameter(index_t(decltype(idx)::value), [&](parameter_ref<T>& p) {
        if (!found && p.name() == name) {
          found = true;
          f(layer, p, k);
        }
        ++k;
      });
    });
    if (!found) throw value_error("the network has no parameter '" + std::string(name) + "'");
  }
  void set_parameter_frozen(std::string_view name, bool frozen) {
    find_parameter(name, [&](auto& layer, parameter_ref<T>&, unsigned k) {
      freeze_state& st = layer.freezing();
      if (!frozen && st.layer) {  // the layer's other parameters stay frozen; the layer (statistics) no longer is
        std::uint8_t all = 0;
        unsigned n = 0;
        layer.for_each_parameter(0, [&](parameter_ref<T>&) { all = std::uint8_t(all | (1u << n++)); });
        st = freeze_state{all, false};
      }
      st.parameters = std::uint8_t(frozen ? st.parameters | (1u << k) : st.parameters & ~(1u << k));
    });
  }

  // The lowest layer with a parameter that takes a gradient (layer_count if none): no stage below it needs
  // a backward pass, and the stage holding it needs no input gradient.
  std::size_t first_trained_layer() {
    std::size_t first = layer_count;
    for_each_parameter([&](parameter_ref<T>& p) {
      if (!p.frozen) first = std::min(first, std::size_t(p.module));
    });
    return first;
  }

  struct ignore_stage final {
    void operator()(index_t) const noexcept {}
  };
  template <class OnReady = ignore_stage>
  void backward_from_output_gradient(bool want_input_gradient, OnReady&& on_ready = {}) {
    auto ctx = context();
    const std::size_t first_trained = want_input_gradient ? 0 : first_trained_layer();
    for_each_stage_reversed([&]<class Stage>(std::size_t s) {
      // Below first_trained nothing needs a gradient: stop (the stages' gradients are final, all zero).
      if (want_input_gradient || Stage::first + Stage::count > first_trained)
        detail::stage_runner<Stage>::backward(ctx, workspaces_[s], last_mode_,
                                              want_input_gradient || Stage::first > first_trained);
      on_ready(index_t(Stage::first));
    });
  }

  using context_type = detail::stage_context<T, layers_type, layer_count + 1>;
  context_type context() { return context_type{layers_, acts_, grads_, rng_}; }

  // Calls f.template operator()<Stage>(stage_index) for each stage of the plan, in order or reversed.
  template <class F>
  void for_each_stage(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f.template operator()<typename detail::stage_at<I, plan>::type>(I), ...);
    }(std::make_index_sequence<plan::size>{});
  }
  template <class F>
  void for_each_stage_reversed(F&& f) {
    constexpr std::size_t n = plan::size;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f.template operator()<typename detail::stage_at<n - 1 - I, plan>::type>(n - 1 - I), ...);
    }(std::make_index_sequence<n>{});
  }

  layers_type layers_;
  std::array<matrix<T>, layer_count + 1> acts_;   // acts_[0] = input, acts_[i + 1] = output of layer i
  std::array<matrix<T>, layer_count + 1> grads_;  // grads_[i] = dL/d acts_[i]
  std::array<detail::stage_workspace<T>, plan::size> workspaces_;
  random_engine rng_;
  mode last_mode_ = mode::train;
  bool has_forward_ = false;
};

// A network of T run through its fusion plan; the float one users declare; the same layers run one
// at a time through their reference code.
template <class T, class Input, class... Specs>
using basic_sequential = network<fused, T, Input, Specs...>;
template <class Input, class... Specs>
using sequential = network<fused, float, Input, Specs...>;
template <class Input, class... Specs>
using unfused_sequential = network<unfused, float, Input, Specs...>;

}  // namespace fnn
