#!/bin/sh
echo "duo client talking"
