#!/bin/sh
# The project's release script: a tarball of the tree named after VERSION,
# its path printed on the last line, as Packit's create-archive expects.
set -e
version=$(cat VERSION)
dir=archived-$version
rm -rf "build/$dir"
mkdir -p "build/$dir"
cp VERSION archived.sh "build/$dir/"
tar -czf "build/$dir.tar.gz" -C build "$dir"
echo "created the release tarball for $version"
echo "build/$dir.tar.gz"
