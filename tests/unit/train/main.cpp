#define BOOST_TEST_MODULE fnn_train
#include <boost/test/unit_test.hpp>
