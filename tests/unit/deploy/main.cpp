#define BOOST_TEST_MODULE fnn_deploy
#include <boost/test/unit_test.hpp>
