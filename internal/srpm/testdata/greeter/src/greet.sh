#!/bin/sh
echo "Greetings, ${1:-friend}."
