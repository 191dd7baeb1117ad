#!/bin/sh
echo "archived $(cat /usr/share/archived/VERSION 2>/dev/null || echo unknown)"
