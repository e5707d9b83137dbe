// fnn-train's workflow options: the validation split, early stopping and best.safetensors, checkpoint
// averaging, test-time augmentation, reflected hyper-parameters in the state, every optimizer and schedule
// option reaching the library, and fnn-eval's ensembles.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "helpers.hpp"

namespace {

using fnn_train::test::scratch_dir;
using fnn_train::test::slurp;

fnn_train::options small_run(const std::filesystem::path& data, const std::filesystem::path& out) {
  fnn_train::options o;
  o.data = data;
  o.out = out;
  o.batch = 50;
  o.epochs = 3;
  o.quiet = true;
  return o;
}

std::vector<float> parameters_of(fnn_train::net_t& net) {
  std::vector<float> v;
  net.for_each_parameter([&](fnn::parameter_ref<float>& p) { v.insert(v.end(), p.value.begin(), p.value.end()); });
  return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(workflow)

BOOST_AUTO_TEST_CASE(validation_split_scores_epochs_and_the_test_set_once) {
  scratch_dir data("wfv_data"), out("wfv_out");
  fnn_train::test::write_synthetic_mnist(data.path, 500, 200);
  auto o = small_run(data.path, out.path);
  o.val = "0.2";
  const auto r = fnn_train::train(o);
  const std::string csv = slurp(out.path / "metrics.csv");
  BOOST_TEST(csv.rfind("epoch,step,lr,train_loss,train_accuracy,val_loss,val_accuracy,", 0) == 0, csv);
  // 400 training samples: 8 steps per epoch; the split is out of the 500.
  const auto state = fnn::io::read_safetensors(out.path / "state.safetensors");
  BOOST_TEST(state.metadata.at("train_samples") == "400");
  BOOST_TEST(state.metadata.at("step") == "24");
  BOOST_TEST(state.metadata.count("test_accuracy") == 0u);  // no peeking during training
  BOOST_TEST(r.best_epoch >= 1);
  // The handed-over model is best.safetensors, and its test score is the one reported.
  fnn_train::net_t best;
  const auto meta = fnn::io::load_model(out.path / "best.safetensors", best);
  BOOST_TEST(meta.at("epoch") == std::to_string(r.best_epoch));
  const auto test = fnn_train::load_split(data.path, fnn::io::split::test, 0);
  BOOST_TEST(fnn_train::evaluate(best, test).accuracy == r.test.accuracy);
  o.early_stop = 1;
  o.val.clear();
  BOOST_CHECK_THROW(fnn_train::train(o), fnn::value_error);  // early stopping on the test set is refused
}

BOOST_AUTO_TEST_CASE(early_stopping_stops_after_patience_and_resume_agrees) {
  scratch_dir data("wfe_data"), a("wfe_a"), b("wfe_b");
  fnn_train::test::write_synthetic_mnist(data.path, 400, 100);
  auto o = small_run(data.path, a.path);
  o.epochs = 6;
  o.val = "100";
  o.early_stop = 2;
  o.min_delta = 100;  // no epoch after the first can improve by that much
  const auto full = fnn_train::train(o);
  BOOST_TEST(full.stopped_early);
  BOOST_TEST(full.epochs_run == 3);  // epoch 1 best, 2 and 3 without improvement
  BOOST_TEST(full.best_epoch == 1);
  // Interrupted after epoch 2 and resumed: it stops at the same epoch, with the same files.
  o.out = b.path;
  o.stop_after = 2;
  fnn_train::train(o);
  o.stop_after = 0;
  o.resume = true;
  const auto resumed = fnn_train::train(o);
  BOOST_TEST(resumed.stopped_early);
  BOOST_TEST(resumed.epochs_run == 1);
  BOOST_TEST((slurp(a.path / "best.safetensors") == slurp(b.path / "best.safetensors")));
  BOOST_TEST((slurp(a.path / "model.safetensors") == slurp(b.path / "model.safetensors")));
  // Resuming a run that has stopped trains nothing more.
  const auto again = fnn_train::train(o);
  BOOST_TEST(again.epochs_run == 0);
  BOOST_TEST(again.test.accuracy == full.test.accuracy);
}

BOOST_AUTO_TEST_CASE(average_of_the_last_epochs_with_recomputed_batch_norm) {
  scratch_dir data("wfa_data"), out("wfa_out");
  fnn_train::test::write_synthetic_mnist(data.path, 300, 100);
  auto o = small_run(data.path, out.path);
  o.epochs = 4;
  o.average = 2;
  const auto r = fnn_train::train(o);
  BOOST_TEST_REQUIRE(r.averaged_test.has_value());
  BOOST_TEST(!std::filesystem::exists(out.path / "epoch-2.safetensors"));
  fnn_train::net_t e3, e4, avg;
  fnn::io::load_model(out.path / "epoch-3.safetensors", e3);
  fnn::io::load_model(out.path / "epoch-4.safetensors", e4);
  const auto meta = fnn::io::load_model(out.path / "averaged.safetensors", avg);
  BOOST_TEST(meta.at("fnn.averaged_epochs") == "3,4");
  const auto p3 = parameters_of(e3), p4 = parameters_of(e4), pa = parameters_of(avg);
  BOOST_REQUIRE(pa.size() == p3.size());
  for (std::size_t i = 0; i < pa.size(); ++i) BOOST_TEST_REQUIRE(pa[i] == float((double(p3[i]) + p4[i]) / 2));
  // The running statistics are recomputed for the averaged weights, not averaged.
  const auto rm3 = e3.layer<1>().running_mean(), rm4 = e4.layer<1>().running_mean(), rma = avg.layer<1>().running_mean();
  double differ = 0;
  for (std::size_t j = 0; j < rma.size(); ++j) differ = std::max(differ, std::abs(double(rma[j]) - (double(rm3[j]) + rm4[j]) / 2));
  BOOST_TEST(differ > 1e-4);
  const auto test = fnn_train::load_split(data.path, fnn::io::split::test, 0);
  BOOST_TEST(fnn_train::evaluate(avg, test).accuracy == r.averaged_test->accuracy);
}

BOOST_AUTO_TEST_CASE(tta_scores_the_final_model_over_transformed_copies) {
  scratch_dir data("wft_data"), a("wft_a"), b("wft_b");
  fnn_train::test::write_synthetic_mnist(data.path, 300, 100);
  auto o = small_run(data.path, a.path);
  o.epochs = 1;
  const auto plain = fnn_train::train(o);
  o.out = b.path;
  o.tta = true;
  const auto tta = fnn_train::train(o);
  BOOST_TEST((slurp(a.path / "model.safetensors") == slurp(b.path / "model.safetensors")));  // training unchanged
  BOOST_TEST(tta.test.loss != plain.test.loss);  // the score is not the plain one
  BOOST_TEST(tta.test.accuracy > 0.3);
}

BOOST_AUTO_TEST_CASE(hyper_parameters_are_in_the_state_and_reach_the_optimizer) {
  scratch_dir data("wfh_data"), out("wfh_out");
  fnn_train::test::write_synthetic_mnist(data.path, 200, 50);
  auto o = small_run(data.path, out.path);
  o.epochs = 2;
  o.optimizer = "sgd";
  o.lr = 0.1f;
  o.momentum = 0.9f;
  o.nesterov = true;
  o.weight_decay = 1e-3f;
  o.max_grad_norm = 5;
  o.schedule = "multistep";
  o.milestones = "1";
  o.gamma = 0.5;
  fnn_train::train(o);
  const auto m = fnn::io::read_safetensors(out.path / "state.safetensors").metadata;
  BOOST_TEST(m.at("fnn.optimizer.momentum") == "0.9");
  BOOST_TEST(m.at("fnn.optimizer.nesterov") == "true");
  BOOST_TEST(m.at("fnn.optimizer.weight_decay") == "0.001");
  BOOST_TEST(m.at("fnn.optimizer.max_grad_norm") == "5");
  BOOST_TEST(m.at("fnn.optimizer.lr") == "0.05");  // the learning rate of the last step: after the milestone
  BOOST_TEST(m.at("fnn.train.milestones") == "1");
  BOOST_TEST(m.at("fnn.train.schedule") == "multistep");
  // PyTorch's defaults when nothing is given: SGD without momentum, Adagrad's eps 1e-10.
  for (const auto& [opt, key, want] : {std::tuple<std::string, std::string, std::string>{"sgd", "momentum", "0"},
                                       {"adagrad", "eps", "1e-10"},
                                       {"adam", "weight_decay", "0"},
                                       {"adamw", "weight_decay", "0.01"},
                                       {"rmsprop", "alpha", "0.99"}}) {
    auto d = small_run(data.path, out.path / opt);
    d.epochs = 1;
    d.optimizer = opt;
    fnn_train::train(d);
    BOOST_TEST(fnn::io::read_safetensors(out.path / opt / "state.safetensors").metadata.at("fnn.optimizer." + key) == want,
               opt << " " << key);
  }
}

BOOST_AUTO_TEST_CASE(schedules_and_warmup_follow_their_formulas) {
  scratch_dir data("wfs_data"), out("wfs_out");
  fnn_train::test::write_synthetic_mnist(data.path, 200, 50);  // 4 steps per epoch at batch 50
  fnn_train::options o = small_run(data.path, out.path);
  o.lr = 0.1f;
  o.schedule = "exponential";
  o.gamma = 0.5;
  o.warmup = 2;
  o.warmup_factor = 0.25;
  const auto lr = fnn_train::make_schedule(o, 4, 12);
  BOOST_TEST(std::abs(lr(0) - 0.025) < 1e-7);          // warm-up from a quarter
  BOOST_TEST(std::abs(lr(1) - 0.1 * (0.25 + 0.75 / 2)) < 1e-7);
  BOOST_TEST(std::abs(lr(2 + 4) - 0.05) < 1e-7);       // one epoch after the warm-up: x gamma
  o.warmup = 0;
  o.schedule = "multistep";
  o.milestones = "1,2";
  const auto ms = fnn_train::make_schedule(o, 4, 12);
  BOOST_TEST(std::abs(ms(3) - 0.1) < 1e-7);
  BOOST_TEST(std::abs(ms(4) - 0.05) < 1e-7);
  BOOST_TEST(std::abs(ms(8) - 0.025) < 1e-7);
  o.milestones = "2,1";
  BOOST_CHECK_THROW(fnn_train::make_schedule(o, 4, 12), fnn::value_error);
}

// --schedule plateau: ReduceLROnPlateau on the validation loss, its state in the training state.
BOOST_AUTO_TEST_CASE(plateau_lowers_the_rate_when_validation_stalls_and_resumes_exactly) {
  scratch_dir data("wfp_data"), a("wfp_a"), b("wfp_b");
  fnn_train::test::write_synthetic_mnist(data.path, 400, 100);
  auto o = small_run(data.path, a.path);
  o.epochs = 5;
  o.val = "100";
  o.schedule = "plateau";
  o.plateau_patience = 0;
  o.plateau_factor = 0.5;
  o.plateau_threshold = 0.99;  // only a 99% drop of the loss counts: every epoch after the first is "bad"
  fnn_train::train(o);
  // The lr column is the rate of the next epoch: halved after every epoch from the second on.
  std::vector<double> lr;
  std::istringstream rows(slurp(a.path / "metrics.csv"));
  std::string line;
  std::getline(rows, line);
  while (std::getline(rows, line)) {
    const auto c2 = line.find(',', line.find(',') + 1);
    lr.push_back(std::stod(line.substr(c2 + 1, line.find(',', c2 + 1) - c2 - 1)));
  }
  BOOST_REQUIRE(lr.size() == 5u);
  const double want[5] = {1e-3, 5e-4, 2.5e-4, 1.25e-4, 6.25e-5};
  for (int e = 0; e < 5; ++e) BOOST_TEST(std::abs(lr[std::size_t(e)] - want[e]) < 1e-9 * want[e] + 1e-12, "epoch " << e + 1);
  const auto state = fnn::io::read_safetensors(a.path / "state.safetensors");
  BOOST_TEST(state.metadata.at("fnn.plateau.num_bad_epochs") == "0");  // reset by the reduction
  BOOST_TEST(state.metadata.at("fnn.plateau.last_epoch") == "5");
  BOOST_TEST(std::abs(std::stod(state.metadata.at("fnn.optimizer.lr")) - 1.25e-4) < 1e-10,
             "epoch 5 ran at the rate set after epoch 4: " << state.metadata.at("fnn.optimizer.lr"));
  // Interrupted after epoch 2 and resumed: the same rates and the same model, to the bit.
  o.out = b.path;
  o.stop_after = 2;
  fnn_train::train(o);
  o.stop_after = 0;
  o.resume = true;
  fnn_train::train(o);
  BOOST_TEST((slurp(a.path / "model.safetensors") == slurp(b.path / "model.safetensors")));
  // It follows the validation metric: without --val it is refused.
  o.val.clear();
  o.resume = false;
  BOOST_CHECK_THROW(fnn_train::train(o), fnn::value_error);
}

// --ema: the weight average after every step, exported and scored, kept in the training state.
BOOST_AUTO_TEST_CASE(ema_exports_the_weight_average_without_changing_training_and_resumes_exactly) {
  scratch_dir data("wfm_data"), a("wfm_a"), b("wfm_b"), c("wfm_c");
  fnn_train::test::write_synthetic_mnist(data.path, 400, 100);
  auto o = small_run(data.path, a.path);  // 8 steps per epoch, 3 epochs
  o.ema = 0.9f;
  const auto r = fnn_train::train(o);
  BOOST_REQUIRE(r.ema_test.has_value());
  fnn_train::net_t avg, live;
  const auto meta = fnn::io::load_model(a.path / "ema.safetensors", avg);
  fnn::io::load_model(a.path / "model.safetensors", live);
  BOOST_TEST(meta.at("fnn.ema.updates") == "24");
  const auto test = fnn_train::load_split(data.path, fnn::io::split::test, 0);
  BOOST_TEST(fnn_train::evaluate(avg, test).accuracy == r.ema_test->accuracy);
  const auto pa = parameters_of(avg), pl = parameters_of(live);
  double diff = 0;
  for (std::size_t i = 0; i < pa.size(); ++i) diff = std::max(diff, double(std::abs(pa[i] - pl[i])));
  BOOST_TEST(diff > 1e-4, "the average of decay 0.9 is not the last weights (max difference " << diff << ")");
  // Averaging reads the weights and swaps them back exactly: training is the run without --ema, bit for bit.
  auto plain = o;
  plain.out = c.path;
  plain.ema = 0;
  fnn_train::train(plain);
  BOOST_TEST((slurp(a.path / "model.safetensors") == slurp(c.path / "model.safetensors")));
  BOOST_TEST(!std::filesystem::exists(c.path / "ema.safetensors"));
  // Interrupted after epoch 1 and resumed: the average continues from the training state.
  o.out = b.path;
  o.stop_after = 1;
  fnn_train::train(o);
  o.stop_after = 0;
  o.resume = true;
  fnn_train::train(o);
  BOOST_TEST((slurp(a.path / "ema.safetensors") == slurp(b.path / "ema.safetensors")));
  // A state made without --ema cannot continue an average it does not hold.
  plain.resume = true;
  plain.ema = 0.9f;
  BOOST_CHECK_THROW(fnn_train::train(plain), fnn::value_error);
}

// --init-from / --init-layers / --freeze: fine-tune the head of a trained network with its first block fixed.
BOOST_AUTO_TEST_CASE(transfer_learning_loads_a_prefix_freezes_it_and_resumes_exactly) {
  scratch_dir data("wft_data"), base("wft_base"), a("wft_a"), b("wft_b");
  fnn_train::test::write_synthetic_mnist(data.path, 400, 100);
  auto o = small_run(data.path, base.path);
  o.epochs = 2;
  fnn_train::train(o);
  const auto pretrained = fnn::io::read_safetensors(base.path / "model.safetensors");
  o.out = a.path;
  o.seed = 7;  // another initialization for what is not loaded
  o.init_from = base.path / "model.safetensors";
  o.init_layers = 3;  // dense + batch_norm + gelu
  o.freeze = 3;
  fnn_train::train(o);
  const auto tuned = fnn::io::read_safetensors(a.path / "model.safetensors");
  for (const char* name : {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"})
    BOOST_TEST((tuned.at(name).bytes == pretrained.at(name).bytes), name << " is frozen: the pretrained values");
  BOOST_TEST((tuned.at("1.num_batches_tracked").bytes == pretrained.at("1.num_batches_tracked").bytes));
  for (const char* name : {"3.weight", "4.weight", "4.running_mean", "6.weight"})
    BOOST_TEST((tuned.at(name).bytes != pretrained.at(name).bytes), name << " trains");
  // Interrupted after epoch 1 and resumed (the frozen flags are re-applied from the options): the same bits.
  o.out = b.path;
  o.stop_after = 1;
  fnn_train::train(o);
  o.stop_after = 0;
  o.resume = true;
  fnn_train::train(o);
  BOOST_TEST((slurp(a.path / "model.safetensors") == slurp(b.path / "model.safetensors")));
  // Bad requests are refused before anything runs.
  o.resume = false;
  o.freeze = 99;
  BOOST_CHECK_THROW(fnn_train::train(o), fnn::value_error);
  o.freeze = 0;
  o.init_from.clear();
  BOOST_CHECK_THROW(fnn_train::train(o), fnn::value_error);  // --init-layers without --init-from
}

BOOST_AUTO_TEST_CASE(fnn_eval_ensemble_averages_probabilities) {
#ifndef FNN_EVAL_EXE
  BOOST_TEST_MESSAGE("skipped: fnn-eval not built");
#else
  scratch_dir data("wfx_data"), a("wfx_a"), b("wfx_b");
  fnn_train::test::write_synthetic_mnist(data.path, 300, 100);
  auto o = small_run(data.path, a.path);
  o.epochs = 1;
  o.lr = 1e-4f;  // models that are still wrong often, so the ensemble differs from either
  fnn_train::train(o);
  o.out = b.path;
  o.seed = 7;
  fnn_train::train(o);
  const auto eval = [&](const std::string& args) {
    const std::string cmd = std::string(FNN_EVAL_EXE) + " --data '" + data.path.string() + "' " + args + " 2>&1";
    std::FILE* p = ::popen(cmd.c_str(), "r");
    std::string text;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) text += buf;
    BOOST_TEST(::pclose(p) == 0, text);
    return text;
  };
  const std::string ma = (a.path / "model.safetensors").string(), mb = (b.path / "model.safetensors").string();
  const std::string out = eval("--ensemble '" + ma + "' '" + mb + "'");
  // The oracle: each model's softmax computed here, averaged, argmax.
  fnn_train::net_t na, nb;
  fnn::io::load_model(ma, na);
  fnn::io::load_model(mb, nb);
  const auto test = fnn_train::load_split(data.path, fnn::io::split::test, 0);
  fnn::matrix<float> x(test.size(), 784);
  test.to_float(0, test.size(), x.data());
  const auto la = na.infer(x.view()), lb = nb.infer(x.view());
  long correct = 0;
  for (fnn::index_t i = 0; i < x.rows(); ++i) {
    double best = -1;
    int arg = 0;
    double za = 0, zb = 0;
    for (int c = 0; c < 10; ++c) za += std::exp(double(la(i, c))), zb += std::exp(double(lb(i, c)));
    for (int c = 0; c < 10; ++c) {
      const double p = std::exp(double(la(i, c))) / za + std::exp(double(lb(i, c))) / zb;
      if (p > best) best = p, arg = c;
    }
    correct += arg == test.y[std::size_t(i)];
  }
  char want[64];
  std::snprintf(want, sizeof want, "test accuracy %.4f", double(correct) / double(x.rows()));
  BOOST_TEST(out.find(want) != std::string::npos, out << " (expected " << want << ")");
  BOOST_TEST(out.find("ensemble of 2") != std::string::npos, out);
  BOOST_TEST(eval("--checkpoint '" + ma + "' --tta").find("with TTA") != std::string::npos);
#endif
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(search)

BOOST_AUTO_TEST_CASE(random_search_writes_a_table_and_its_best_trial_is_reproducible) {
  scratch_dir data("wfr_data"), out("wfr_out"), again("wfr_again");
  fnn_train::test::write_synthetic_mnist(data.path, 300, 50);
  auto o = small_run(data.path, out.path);
  o.epochs = 1;
  o.val = "0.2";
  BOOST_CHECK_THROW(fnn_train::random_search(small_run(data.path, out.path), 2, nullptr), fnn::value_error);
  const auto trials = fnn_train::random_search(o, 3, nullptr);
  BOOST_REQUIRE(trials.size() == 3u);
  const std::string csv = slurp(out.path / "search.csv");
  BOOST_TEST(std::count(csv.begin(), csv.end(), '\n') == 4, csv);
  BOOST_TEST(csv.rfind("trial,lr,weight_decay,best_epoch,best_val_loss\n", 0) == 0, csv);
  for (const auto& t : trials) {
    BOOST_TEST((t.lr >= 1e-4f && t.lr <= 1e-2f));
    BOOST_TEST((t.weight_decay >= 1e-5f && t.weight_decay <= 1e-1f));
  }
  BOOST_TEST(trials[0].best_val <= trials[1].best_val);  // best first
  BOOST_TEST(trials[0].lr != trials[1].lr);
  // The best trial, run on its own with its values, gives the same validation score.
  auto best = o;
  best.out = again.path;
  best.lr = trials[0].lr;
  best.weight_decay = trials[0].weight_decay;
  BOOST_TEST(fnn_train::train(best, nullptr).best_val == trials[0].best_val);
  const std::string cmd = fnn_train::command_line(best);
  BOOST_TEST(cmd.find(" --val 0.2") != std::string::npos, cmd);
  BOOST_TEST(cmd.find(" --epochs 1") != std::string::npos, cmd);
  BOOST_TEST(cmd.find(" --weight-decay ") != std::string::npos, cmd);
  BOOST_TEST(cmd.find("--out") == std::string::npos, cmd);
}

BOOST_AUTO_TEST_SUITE_END()
