{#-
    Every distinct postal address the project knows, exactly as captured (profiles' and suppression
    entries'), with its address_key: the input of the incremental address validation.
-#}
with

profiles as (

    select * from {{ ref('stg_crm__profiles') }}

),

suppression_entries as (

    select * from {{ ref('stg_suppression__entries') }}

),

captured as (

    select
        address_line_1,
        address_line_2,
        postal_code,
        city,
        region,
        country_code

    from profiles

    union all

    select
        address_line_1,
        address_line_2,
        postal_code,
        city,
        region,
        country_code

    from suppression_entries
    where address_line_1 is not null

),

keyed as (

    select distinct
        {{ address_key('address_line_1', 'address_line_2', 'postal_code', 'city', 'region', 'country_code') }}
            as address_key,
        address_line_1,
        address_line_2,
        postal_code,
        city,
        region,
        country_code

    from captured

)

select * from keyed
