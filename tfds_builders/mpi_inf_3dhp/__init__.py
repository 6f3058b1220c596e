"""MPI-INF-3DHP (HybrIK's parsed annotations) TFDS builder."""

from tfds_builders.mpi_inf_3dhp.mpi_inf_3dhp_dataset_builder import Builder
