// Hyper-parameters as data: the Hana-reflected option structs go to metadata and back exactly, bad values are
// refused with the key named, and describe/set_option see every field.
#include <boost/test/unit_test.hpp>
#include <string>

#include "fnn/train/reflect.hpp"

namespace train = fnn::train;

namespace {
struct my_options {
  int epochs = 3;
  double lr = 0.1;
  std::string name = "run";
  std::array<float, 2> pair{1.5f, -2.0f};
  std::uint64_t seed = 7;
};
}  // namespace
BOOST_HANA_ADAPT_STRUCT(my_options, epochs, lr, name, pair, seed);

BOOST_AUTO_TEST_CASE(optimizer_options_round_trip_exactly) {
  fnn::optim::adam_options<float, true> o{.lr = 3.1e-4f, .betas = {0.85f, 0.995f}, .eps = 1e-7f, .weight_decay = 0.05f,
                                          .amsgrad = true, .l1 = 1e-5f, .max_grad_norm = 1.0f,
                                          .decay = fnn::optim::decay_policy::weights_only};
  fnn::io::metadata m;
  train::write_options(m, "optimizer", o);
  BOOST_TEST(m.size() == 10u);  // every field of adam_options
  BOOST_TEST(m.at("optimizer.lr") == "0.00031");
  BOOST_TEST(m.at("optimizer.betas") == "0.85,0.995");
  BOOST_TEST(m.at("optimizer.decay") == "weights_only");
  fnn::optim::adam_options<float, true> back;
  train::read_options("state", m, "optimizer", back);
  BOOST_TEST(back.lr == o.lr);
  BOOST_TEST(back.betas[1] == o.betas[1]);
  BOOST_TEST(back.eps == o.eps);
  BOOST_TEST(back.amsgrad);
  BOOST_TEST(back.l1 == o.l1);
  BOOST_TEST((back.decay == fnn::optim::decay_policy::weights_only));
  for (const auto& names : {train::option_names<fnn::optim::sgd_options<float>>(),
                            train::option_names<fnn::optim::rmsprop_options<float>>(),
                            train::option_names<fnn::optim::adagrad_options<float>>()})
    BOOST_TEST(names.size() >= 10u);
}

BOOST_AUTO_TEST_CASE(missing_keys_keep_values_bad_values_are_refused_whole) {
  my_options o;
  fnn::io::metadata m{{"p.lr", "0.25"}};
  train::read_options("f", m, "p", o);
  BOOST_TEST(o.lr == 0.25);
  BOOST_TEST(o.epochs == 3);
  m["p.epochs"] = "12";
  m["p.seed"] = "-1";  // an unsigned field
  try {
    train::read_options("f", m, "p", o);
    BOOST_FAIL("a bad value was accepted");
  } catch (const fnn::io_error& e) {
    BOOST_TEST(std::string(e.what()).find("p.seed") != std::string::npos);
  }
  BOOST_TEST(o.epochs == 3);  // all-or-nothing
  m["p.seed"] = "18446744073709551615";
  m["p.pair"] = "1,2,3";
  BOOST_CHECK_THROW(train::read_options("f", m, "p", o), fnn::io_error);
  m["p.pair"] = "0.5,0.25";
  train::read_options("f", m, "p", o);
  BOOST_TEST(o.pair[1] == 0.25f);
  BOOST_TEST(o.seed == 18446744073709551615ull);
}

BOOST_AUTO_TEST_CASE(describe_and_set_option) {
  my_options o;
  BOOST_TEST(train::describe_options(o) == "epochs=3 lr=0.1 name=run pair=1.5,-2 seed=7");
  BOOST_TEST(train::set_option(o, "name", "other"));
  BOOST_TEST(o.name == "other");
  BOOST_TEST(!train::set_option(o, "nope", "1"));
  BOOST_CHECK_THROW(train::set_option(o, "epochs", "3.5"), fnn::value_error);
  fnn::optim::ema_options<float> e;
  BOOST_TEST(train::describe_options(e) == "decay=0.999 warmup=false");
}
