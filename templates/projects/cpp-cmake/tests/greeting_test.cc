#include <cstdlib>
#include <iostream>

#include "greeting.h"

int main() {
  if (Greeting("world") != "Hello, world!") {
    std::cerr << "Greeting(\"world\") = " << Greeting("world") << "\n";
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
