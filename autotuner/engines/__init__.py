"""Engine runtimes: flag vocabularies, command rendering, and the engines we ship (the `sim` double, llama.cpp)."""
