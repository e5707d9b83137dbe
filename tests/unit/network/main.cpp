#define BOOST_TEST_MODULE fnn_network
#include <boost/test/unit_test.hpp>
