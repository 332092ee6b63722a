#pragma once

#include <string>

// The greeting for `name`.
std::string Greeting(const std::string& name);
