#!/bin/sh
echo "duo server listening"
